//! `admin_users`: the dashboard's operator accounts (argon2 hashes only, never passwords).

use sqlx::PgPool;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AdminUser {
    pub id: i64,
    pub username: String,
    pub password_hash: String,
    pub session_epoch: i64,
    #[sqlx(try_from = "String")]
    pub role: Role,
}

/// What an account may do (`admin_users.role`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Everything in the dashboard.
    Admin,
    /// Redeeming rewards, and nothing else (shop staff scanning followers' codes).
    Staff,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Staff => "staff",
        }
    }

    pub fn parse(value: &str) -> Option<Role> {
        match value {
            "admin" => Some(Role::Admin),
            "staff" => Some(Role::Staff),
            _ => None,
        }
    }
}

impl TryFrom<String> for Role {
    type Error = String;

    fn try_from(value: String) -> Result<Self, String> {
        Role::parse(&value).ok_or_else(|| format!("unknown account role {value:?}"))
    }
}

pub async fn by_username(pool: &PgPool, username: &str) -> sqlx::Result<Option<AdminUser>> {
    sqlx::query_as(
        "SELECT id, username, password_hash, session_epoch, role FROM admin_users WHERE username = $1",
    )
    .bind(username)
    .fetch_optional(pool)
    .await
}

pub async fn by_id(pool: &PgPool, id: i64) -> sqlx::Result<Option<AdminUser>> {
    sqlx::query_as(
        "SELECT id, username, password_hash, session_epoch, role FROM admin_users WHERE id = $1",
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

/// Creates the account or sets its password (and its role, when `role` is given: a new account
/// is an admin unless told otherwise, an existing one keeps its role); this ends the account's
/// sessions.
pub async fn upsert(
    pool: &PgPool,
    username: &str,
    hash: &str,
    role: Option<Role>,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO admin_users (username, password_hash, role)
         VALUES ($1, $2, COALESCE($3, 'admin'))
         ON CONFLICT (username) DO UPDATE SET password_hash = EXCLUDED.password_hash,
             role = COALESCE($3, admin_users.role),
             session_epoch = admin_users.session_epoch + 1, updated_at = now()",
    )
    .bind(username)
    .bind(hash)
    .bind(role.map(Role::as_str))
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
