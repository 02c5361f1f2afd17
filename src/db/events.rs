//! The `events` table: every accepted push, once.

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use super::Tx;
use crate::domain::{OpenId, Outcome};

/// One push to record, with the outcome decided for it.
pub struct NewEvent<'a> {
    pub dedupe_key: &'a str,
    pub openid: &'a OpenId,
    pub create_time: DateTime<Utc>,
    pub msg_type: &'a str,
    pub event: Option<&'a str>,
    pub event_key: Option<&'a str>,
    pub ticket: Option<&'a str>,
    pub outcome: &'a str,
}

/// Corrects outcomes that the ledger decided after the events were written.
pub async fn set_outcomes(tx: &mut Tx<'_>, changes: &[(i64, &str)]) -> sqlx::Result<()> {
    if changes.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "UPDATE events e SET outcome = x.outcome
         FROM unnest($1::bigint[], $2::text[]) AS x(id, outcome)
         WHERE e.id = ANY($1) AND e.id = x.id",
    )
    .bind(changes.iter().map(|c| c.0).collect::<Vec<_>>())
    .bind(changes.iter().map(|c| c.1).collect::<Vec<_>>())
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
    #[sqlx(try_from = "String")]
    pub outcome: Outcome,
    pub received_at: DateTime<Utc>,
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
