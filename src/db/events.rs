//! The `events` table: every accepted push, once.

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use super::Tx;
use crate::wechat::message::Push;

/// Records a push. Returns its id, or `None` when the same push (by dedupe key) is already
/// recorded — a WeChat retry. Concurrent duplicates wait on the unique index, so exactly one
/// of them gets an id.
pub async fn insert(tx: &mut Tx<'_>, push: &Push, at: DateTime<Utc>) -> sqlx::Result<Option<i64>> {
    sqlx::query_scalar(
        "INSERT INTO events (dedupe_key, openid, create_time, msg_type, event, event_key, ticket)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (dedupe_key) DO NOTHING
         RETURNING id",
    )
    .bind(push.dedupe_key())
    .bind(&push.from_user)
    .bind(at)
    .bind(&push.msg_type)
    .bind(&push.event)
    .bind(&push.event_key)
    .bind(&push.ticket)
    .fetch_optional(&mut **tx)
    .await
}

pub async fn set_outcome(tx: &mut Tx<'_>, id: i64, outcome: &str) -> sqlx::Result<()> {
    sqlx::query("UPDATE events SET outcome = $2 WHERE id = $1")
        .bind(id)
        .bind(outcome)
        .execute(&mut **tx)
        .await
        .map(drop)
}

#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct EventRow {
    pub id: i64,
    pub openid: String,
    pub create_time: DateTime<Utc>,
    pub msg_type: String,
    pub event: Option<String>,
    pub event_key: Option<String>,
    pub outcome: String,
    pub received_at: DateTime<Utc>,
}

pub async fn count_for(pool: &PgPool, dedupe_key: &str) -> sqlx::Result<i64> {
    sqlx::query_scalar("SELECT count(*) FROM events WHERE dedupe_key = $1")
        .bind(dedupe_key)
        .fetch_one(pool)
        .await
}

pub async fn for_user(pool: &PgPool, openid: &str, limit: i64) -> sqlx::Result<Vec<EventRow>> {
    sqlx::query_as(
        "SELECT id, openid, create_time, msg_type, event, event_key, outcome, received_at
         FROM events WHERE openid = $1 ORDER BY create_time DESC, id DESC LIMIT $2",
    )
    .bind(openid)
    .bind(limit)
    .fetch_all(pool)
    .await
}
