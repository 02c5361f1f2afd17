//! `admin_users`: the dashboard's operator accounts (argon2 hashes only, never passwords).

use sqlx::PgPool;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AdminUser {
    pub id: i64,
    pub username: String,
    pub password_hash: String,
    pub session_epoch: i64,
}

pub async fn by_username(pool: &PgPool, username: &str) -> sqlx::Result<Option<AdminUser>> {
    sqlx::query_as(
        "SELECT id, username, password_hash, session_epoch FROM admin_users WHERE username = $1",
    )
    .bind(username)
    .fetch_optional(pool)
    .await
}

pub async fn by_id(pool: &PgPool, id: i64) -> sqlx::Result<Option<AdminUser>> {
    sqlx::query_as(
        "SELECT id, username, password_hash, session_epoch FROM admin_users WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(pool)
    .await
}

/// Stores the account unless it exists (the built-in `admin` on first start). Returns whether
/// it was created.
pub async fn create_if_missing(pool: &PgPool, username: &str, hash: &str) -> sqlx::Result<bool> {
    sqlx::query(
        "INSERT INTO admin_users (username, password_hash) VALUES ($1, $2)
         ON CONFLICT (username) DO NOTHING",
    )
    .bind(username)
    .bind(hash)
    .execute(pool)
    .await
    .map(|r| r.rows_affected() == 1)
}

/// Creates the account or sets its password; a new password ends the account's sessions.
pub async fn upsert(pool: &PgPool, username: &str, hash: &str) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO admin_users (username, password_hash) VALUES ($1, $2)
         ON CONFLICT (username) DO UPDATE SET password_hash = EXCLUDED.password_hash,
             session_epoch = admin_users.session_epoch + 1, updated_at = now()",
    )
    .bind(username)
    .bind(hash)
    .execute(pool)
    .await
    .map(drop)
}

/// Ends every session of the account issued so far (logout).
pub async fn end_sessions(pool: &PgPool, id: i64) -> sqlx::Result<()> {
    sqlx::query("UPDATE admin_users SET session_epoch = session_epoch + 1 WHERE id = $1")
        .bind(id)
        .execute(pool)
        .await
        .map(drop)
}
