//! The outbox: work written in the same transaction as the decision that causes it and done
//! afterwards by `jobs`. A job is claimed with a lease (not a held lock), so a crashed worker's
//! jobs come back by themselves when the lease runs out.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::PgPool;

use super::Tx;

/// What an outbox job does (the `outbox.kind` column).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobKind {
    /// A text for a follower (customer-service message, or a template message when the
    /// follower is outside the 48-hour window): payload `MessageJob`.
    Message,
    /// The follower's poster as an image message: payload `poster::delivery::PosterJob`.
    Poster,
    /// Everything a follower has yet to be told about their invitations, in one message by the
    /// best open channel: payload `{"openid"}`, at most one open per follower.
    Notice,
}

impl JobKind {
    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Message => "message",
            JobKind::Poster => "poster",
            JobKind::Notice => "notice",
        }
    }

    /// `None` for a kind this version does not know (the worker parks such a job as failed).
    pub fn parse(kind: &str) -> Option<JobKind> {
        match kind {
            "message" => Some(JobKind::Message),
            "poster" => Some(JobKind::Poster),
            "notice" => Some(JobKind::Notice),
            _ => None,
        }
    }
}

/// The payload of a `message` job (queued one per credit before notices were coalesced; the
/// worker still sends those left in the queue).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MessageJob {
    pub openid: String,
    pub text: String,
    pub template_id: Option<String>,
}

/// Enqueues a job that becomes due only after `delay_secs`: a fallback that the caller cancels
/// (with `mark_sent`) if it manages the work itself in time. Returns the job's id.
pub async fn enqueue_after(
    tx: &mut Tx<'_>,
    kind: JobKind,
    payload: &Value,
    delay_secs: i64,
) -> sqlx::Result<i64> {
    sqlx::query_scalar(
        "INSERT INTO outbox (kind, payload, run_after) VALUES ($1, $2, now() + make_interval(secs => $3))
         RETURNING id",
    )
    .bind(kind.as_str())
    .bind(payload)
    .bind(delay_secs as f64)
    .fetch_one(&mut **tx)
    .await
}

/// Makes a pending job due now.
pub async fn run_now(pool: &PgPool, id: i64) -> sqlx::Result<()> {
    sqlx::query("UPDATE outbox SET run_after = now() WHERE id = $1 AND status = 'pending'")
        .bind(id)
        .execute(pool)
        .await
        .map(drop)
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Job {
    pub id: i64,
    pub kind: String,
    pub payload: Value,
    pub attempts: i32,
}

/// Claims up to `limit` due jobs for `lease_secs`. Concurrent workers skip each other's rows.
pub async fn claim(pool: &PgPool, limit: i64, lease_secs: i64) -> sqlx::Result<Vec<Job>> {
    sqlx::query_as(
        "UPDATE outbox SET run_after = now() + make_interval(secs => $2), attempts = attempts + 1,
                again = false
         WHERE id IN (SELECT id FROM outbox WHERE status = 'pending' AND run_after <= now()
                      ORDER BY run_after, id LIMIT $1 FOR UPDATE SKIP LOCKED)
         RETURNING id, kind, payload, attempts",
    )
    .bind(limit)
    .bind(lease_secs as f64)
    .fetch_all(pool)
    .await
}

/// Returns a claimed job to the queue, due in `delay_secs`, without counting the claim as an
/// attempt (it was never tried).
pub async fn put_back(pool: &PgPool, id: i64, delay_secs: i64) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE outbox SET run_after = now() + make_interval(secs => $2), attempts = attempts - 1
         WHERE id = $1 AND status = 'pending'",
    )
    .bind(id)
    .bind(delay_secs as f64)
    .execute(pool)
    .await
    .map(drop)
}

pub async fn mark_sent(pool: &PgPool, id: i64) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE outbox SET status = 'sent', done_at = now(), last_error = NULL WHERE id = $1",
    )
    .bind(id)
    .execute(pool)
    .await
    .map(drop)
}

pub async fn retry_later(pool: &PgPool, id: i64, delay_secs: i64, error: &str) -> sqlx::Result<()> {
    sqlx::query("UPDATE outbox SET run_after = now() + make_interval(secs => $2), last_error = $3 WHERE id = $1")
        .bind(id)
        .bind(delay_secs as f64)
        .bind(error)
        .execute(pool)
        .await
        .map(drop)
}

pub async fn mark_failed(pool: &PgPool, id: i64, error: &str) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE outbox SET status = 'failed', done_at = now(), last_error = $2 WHERE id = $1",
    )
    .bind(id)
    .bind(error)
    .execute(pool)
    .await
    .map(drop)
}

/// Puts a failed job back in the queue (the dashboard's retry button).
pub async fn retry_failed(pool: &PgPool, id: i64) -> sqlx::Result<bool> {
    sqlx::query("UPDATE outbox SET status = 'pending', run_after = now(), done_at = NULL WHERE id = $1 AND status = 'failed'")
        .bind(id)
        .execute(pool)
        .await
        .map(|r| r.rows_affected() == 1)
}

#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct FailedJob {
    pub id: i64,
    pub kind: String,
    pub payload: Value,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub done_at: Option<DateTime<Utc>>,
}

pub async fn failed(pool: &PgPool, limit: i64) -> sqlx::Result<Vec<FailedJob>> {
    sqlx::query_as(
        "SELECT id, kind, payload, attempts, last_error, done_at FROM outbox
         WHERE status = 'failed' ORDER BY done_at DESC LIMIT $1",
    )
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// Where an outbox job stands (the `outbox.status` column).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobStatus {
    Pending,
    /// A notice with no open channel, until the follower can be reached.
    Waiting,
    Sent,
    /// Given up on (or refused for good); kept for the dashboard, which can retry it.
    Failed,
}

impl JobStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Pending => "pending",
            JobStatus::Waiting => "waiting",
            JobStatus::Sent => "sent",
            JobStatus::Failed => "failed",
        }
    }

    pub fn is_failed(&self) -> bool {
        *self == JobStatus::Failed
    }
}

impl TryFrom<String> for JobStatus {
    type Error = String;

    fn try_from(value: String) -> Result<JobStatus, String> {
        [
            JobStatus::Pending,
            JobStatus::Waiting,
            JobStatus::Sent,
            JobStatus::Failed,
        ]
        .into_iter()
        .find(|s| s.as_str() == value)
        .ok_or_else(|| format!("unknown outbox status {value:?}"))
    }
}

impl std::fmt::Display for JobStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How many jobs are in each status.
pub async fn counts(pool: &PgPool) -> sqlx::Result<Vec<(JobStatus, i64)>> {
    let rows: Vec<(String, i64)> =
        sqlx::query_as("SELECT status, count(*) FROM outbox GROUP BY status ORDER BY status")
            .fetch_all(pool)
            .await?;
    rows.into_iter()
        .map(|(status, n)| {
            JobStatus::try_from(status)
                .map(|s| (s, n))
                .map_err(|e| sqlx::Error::Decode(e.into()))
        })
        .collect()
}
