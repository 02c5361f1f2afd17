//! `service_state`: small facts the service keeps about itself.

use serde_json::Value;
use sqlx::PgExecutor;

pub const PERMANENT_QUOTA_EXHAUSTED: &str = "permanent_quota_exhausted";
pub const IMPORT_CURSOR: &str = "import_followers_cursor";

pub async fn get(db: impl PgExecutor<'_>, key: &str) -> sqlx::Result<Option<Value>> {
    sqlx::query_scalar("SELECT value FROM service_state WHERE key = $1")
        .bind(key)
        .fetch_optional(db)
        .await
}

pub async fn set(db: impl PgExecutor<'_>, key: &str, value: &Value) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO service_state (key, value) VALUES ($1, $2)
         ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, updated_at = now()",
    )
    .bind(key)
    .bind(value)
    .execute(db)
    .await
    .map(drop)
}

/// Sets `key` unless it is already set (first writer wins, e.g. "quota exhausted since").
pub async fn set_once(db: impl PgExecutor<'_>, key: &str, value: &Value) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO service_state (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
    )
    .bind(key)
    .bind(value)
    .execute(db)
    .await
    .map(drop)
}

pub async fn delete(db: impl PgExecutor<'_>, key: &str) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM service_state WHERE key = $1")
        .bind(key)
        .execute(db)
        .await
        .map(drop)
}
