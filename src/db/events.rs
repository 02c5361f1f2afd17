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

/// Which of `keys` are recorded already, and the campaigns' version (read in the same round
/// trip: every batch needs both).
pub async fn recorded_among(tx: &mut Tx<'_>, keys: &[&str]) -> sqlx::Result<(Vec<String>, i64)> {
    sqlx::query_as(
        "SELECT ARRAY(SELECT e.dedupe_key FROM unnest($1::text[]) AS k(key)
                      JOIN events e ON e.dedupe_key = k.key),
                (SELECT version FROM campaign_version)",
    )
    .bind(keys)
    .fetch_one(&mut **tx)
    .await
}

/// Records pushes, in the order given (callers sort by dedupe key, so concurrent batches take
/// the unique index's entries in one order). Returns (id, dedupe_key) of each row written; a
/// key recorded meanwhile by another transaction is skipped after that transaction commits.
pub async fn insert_many(
    tx: &mut Tx<'_>,
    events: &[NewEvent<'_>],
) -> sqlx::Result<Vec<(i64, String)>> {
    sqlx::query_as(
        "INSERT INTO events (dedupe_key, openid, create_time, msg_type, event, event_key, ticket, outcome)
         SELECT k, o, c, m, e, ek, t, oc
         FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::text[], $5::text[],
                     $6::text[], $7::text[], $8::text[]) WITH ORDINALITY AS x(k, o, c, m, e, ek, t, oc, n)
         ORDER BY n
         ON CONFLICT (dedupe_key) DO NOTHING
         RETURNING id, dedupe_key",
    )
    .bind(events.iter().map(|e| e.dedupe_key).collect::<Vec<_>>())
    .bind(events.iter().map(|e| e.openid.as_str()).collect::<Vec<_>>())
    .bind(events.iter().map(|e| e.create_time).collect::<Vec<_>>())
    .bind(events.iter().map(|e| e.msg_type).collect::<Vec<_>>())
    .bind(events.iter().map(|e| e.event).collect::<Vec<_>>())
    .bind(events.iter().map(|e| e.event_key).collect::<Vec<_>>())
    .bind(events.iter().map(|e| e.ticket).collect::<Vec<_>>())
    .bind(events.iter().map(|e| e.outcome).collect::<Vec<_>>())
    .fetch_all(&mut **tx)
    .await
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
