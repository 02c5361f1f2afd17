//! The `users` table: what Fission knows of each follower.

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use super::Tx;
use crate::domain::OpenId;

#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize, serde::Deserialize)]
pub struct UserRow {
    pub openid: String,
    pub nickname: Option<String>,
    pub avatar_url: Option<String>,
    pub subscribed: bool,
    pub followed_since: Option<DateTime<Utc>>,
    pub state_at: Option<DateTime<Utc>>,
    pub imported_at: Option<DateTime<Utc>>,
    pub last_interaction_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    /// The customer-service allowance as Fission knows it (see `wechat::allowance`).
    pub cs_left: i32,
    pub cs_until: Option<DateTime<Utc>>,
    pub cs_opened_at: Option<DateTime<Utc>>,
}

macro_rules! columns {
    () => {
        "openid, nickname, avatar_url, subscribed, followed_since, state_at, imported_at, last_interaction_at, created_at, cs_left, cs_until, cs_opened_at"
    };
}

/// Creates the followers not known yet and locks their rows until the transaction ends, so two
/// pushes about one follower (on any instance) are decided one after the other. Returns the
/// rows as they were before. Rows are taken in openid order, so concurrent batches cannot
/// deadlock on them.
pub async fn lock_many(tx: &mut Tx<'_>, openids: &[&OpenId]) -> sqlx::Result<Vec<UserRow>> {
    let mut sorted: Vec<&str> = openids.iter().map(|o| o.as_str()).collect();
    sorted.sort_unstable();
    sorted.dedup();
    sqlx::query_as(concat!(
        "INSERT INTO users (openid) SELECT o FROM unnest($1::text[]) WITH ORDINALITY AS x(o, n) ORDER BY n
         ON CONFLICT (openid) DO UPDATE SET openid = EXCLUDED.openid
         RETURNING ",
        columns!()
    ))
    .bind(sorted)
    .fetch_all(&mut **tx)
    .await
}

/// A follower's presence after a batch of pushes, decided while their row is locked.
pub struct PresenceState<'a> {
    pub openid: &'a OpenId,
    pub subscribed: bool,
    pub followed_since: Option<DateTime<Utc>>,
    pub state_at: Option<DateTime<Utc>>,
    pub last_interaction_at: Option<DateTime<Utc>>,
    pub cs_left: i32,
    pub cs_until: Option<DateTime<Utc>>,
    pub cs_opened_at: Option<DateTime<Utc>>,
}

/// Makes the follower known (e.g. when their invite code is issued) without claiming anything
/// about whether or since when they follow.
pub async fn ensure(tx: &mut Tx<'_>, openid: &OpenId) -> sqlx::Result<()> {
    sqlx::query("INSERT INTO users (openid) VALUES ($1) ON CONFLICT (openid) DO NOTHING")
        .bind(openid)
        .execute(&mut **tx)
        .await
        .map(drop)
}

/// What a push tells us about a follower at time `at`.
#[derive(Debug, Clone, Copy)]
pub struct Presence {
    /// The user was following at `at` (subscribe, SCAN, a message, a menu click).
    pub following: bool,
    /// A subscribe (true) or unsubscribe (false) that sets the state unless a later one already did.
    pub state: Option<bool>,
}

pub async fn apply(
    tx: &mut Tx<'_>,
    openid: &str,
    at: DateTime<Utc>,
    presence: Presence,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE users SET
            followed_since = CASE WHEN $3 THEN LEAST(followed_since, $2) ELSE followed_since END,
            subscribed = CASE WHEN $4::boolean IS NOT NULL AND (state_at IS NULL OR state_at <= $2)
                              THEN $4 ELSE subscribed END,
            state_at = CASE WHEN $4::boolean IS NOT NULL AND (state_at IS NULL OR state_at <= $2)
                            THEN $2 ELSE state_at END,
            last_interaction_at = CASE WHEN $3 THEN GREATEST(last_interaction_at, $2) ELSE last_interaction_at END
         WHERE openid = $1",
    )
    .bind(openid)
    .bind(at)
    .bind(presence.following)
    .bind(presence.state)
    .execute(&mut **tx)
    .await
    .map(drop)
}

pub async fn get(pool: &PgPool, openid: &OpenId) -> sqlx::Result<Option<UserRow>> {
    sqlx::query_as(concat!(
        "SELECT ",
        columns!(),
        " FROM users WHERE openid = $1"
    ))
    .bind(openid)
    .fetch_optional(pool)
    .await
}

pub async fn nickname(db: impl sqlx::PgExecutor<'_>, openid: &str) -> sqlx::Result<Option<String>> {
    let row: Option<Option<String>> =
        sqlx::query_scalar("SELECT nickname FROM users WHERE openid = $1")
            .bind(openid)
            .fetch_optional(db)
            .await?;
    Ok(row.flatten())
}

/// Records existing followers so they can never be credited as new invitees.
pub async fn mark_imported(pool: &PgPool, openids: &[String]) -> sqlx::Result<u64> {
    sqlx::query(
        "INSERT INTO users (openid, subscribed, imported_at)
         SELECT unnest($1::text[]), true, now()
         ON CONFLICT (openid) DO UPDATE SET imported_at = COALESCE(users.imported_at, now())",
    )
    .bind(openids)
    .execute(pool)
    .await
    .map(|r| r.rows_affected())
}

pub async fn set_profile(
    pool: &PgPool,
    openid: &str,
    nickname: &str,
    avatar_url: Option<&str>,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO users (openid, nickname, avatar_url) VALUES ($1, $2, $3)
         ON CONFLICT (openid) DO UPDATE SET nickname = EXCLUDED.nickname, avatar_url = EXCLUDED.avatar_url",
    )
    .bind(openid)
    .bind(nickname)
    .bind(avatar_url)
    .execute(pool)
    .await
    .map(drop)
}
