//! The `invite_codes` table: one QR code per follower or channel, and the scene sequences.

use chrono::{DateTime, Utc};
use sqlx::{PgExecutor, PgPool};

use super::Tx;
use crate::domain::{OpenId, Scene};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CodeRow {
    pub id: i64,
    pub owner_openid: Option<String>,
    pub channel_id: Option<i64>,
    pub permanent: bool,
    pub scene_id: Option<i32>,
    pub scene_str: Option<String>,
    pub ticket: String,
    pub url: String,
    pub expires_at: Option<DateTime<Utc>>,
    pub image_key: Option<String>,
    pub scans: i64,
    pub follows: i64,
    pub created_at: DateTime<Utc>,
}

macro_rules! columns {
    () => {
        "id, owner_openid, channel_id, permanent, scene_id, scene_str, ticket, url, expires_at, image_key, scans, follows, created_at"
    };
}

/// A code as WeChat issued it, ready to be stored.
#[derive(Debug, Clone)]
pub struct NewCode {
    pub permanent: bool,
    pub scene_id: Option<i32>,
    pub scene_str: Option<String>,
    pub quota_slot: Option<i32>,
    pub ticket: String,
    pub url: String,
    pub expires_at: Option<DateTime<Utc>>,
}

pub async fn by_owner(db: impl PgExecutor<'_>, openid: &OpenId) -> sqlx::Result<Option<CodeRow>> {
    sqlx::query_as(concat!(
        "SELECT ",
        columns!(),
        " FROM invite_codes WHERE owner_openid = $1"
    ))
    .bind(openid)
    .fetch_optional(db)
    .await
}

pub async fn by_channel(db: impl PgExecutor<'_>, channel_id: i64) -> sqlx::Result<Option<CodeRow>> {
    sqlx::query_as(concat!(
        "SELECT ",
        columns!(),
        " FROM invite_codes WHERE channel_id = $1"
    ))
    .bind(channel_id)
    .fetch_optional(db)
    .await
}

/// The code a push's scene names, if any.
pub async fn by_scene(db: impl PgExecutor<'_>, scene: &Scene) -> sqlx::Result<Option<CodeRow>> {
    match scene {
        Scene::Id(id) => {
            let Ok(id) = i32::try_from(*id) else {
                return Ok(None);
            };
            sqlx::query_as(concat!(
                "SELECT ",
                columns!(),
                " FROM invite_codes WHERE scene_id = $1"
            ))
            .bind(id)
            .fetch_optional(db)
            .await
        }
        Scene::Str(s) => {
            sqlx::query_as(concat!(
                "SELECT ",
                columns!(),
                " FROM invite_codes WHERE scene_str = $1"
            ))
            .bind(s.as_str())
            .fetch_optional(db)
            .await
        }
    }
}

/// A code a scene names, with its owner's nickname.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SceneCode {
    pub id: i64,
    pub owner_openid: Option<String>,
    pub owner_nickname: Option<String>,
    pub channel_id: Option<i64>,
    pub permanent: bool,
    pub scene_id: Option<i32>,
    pub scene_str: Option<String>,
    pub expires_at: Option<DateTime<Utc>>,
}

/// The next slot of the permanent quota (1, 2, …). Sequences never hand out a value twice,
/// however many instances ask at once; a value burned by a failed WeChat call is not reused.
pub async fn next_permanent_slot(db: impl PgExecutor<'_>) -> sqlx::Result<i64> {
    sqlx::query_scalar("SELECT nextval('permanent_scene_seq')")
        .fetch_one(db)
        .await
}

/// The next scene id for a temporary code (above the permanent range).
pub async fn next_temporary_scene(db: impl PgExecutor<'_>) -> sqlx::Result<i64> {
    sqlx::query_scalar("SELECT nextval('temporary_scene_seq')")
        .fetch_one(db)
        .await
}

/// Whose code it is.
#[derive(Debug, Clone, Copy)]
pub enum Owner<'a> {
    Follower(&'a str),
    Channel(i64),
}

/// Stores a code. A follower's existing code is replaced (a temporary code renewed); a
/// channel's code is always new.
pub async fn save(tx: &mut Tx<'_>, owner: Owner<'_>, code: &NewCode) -> sqlx::Result<CodeRow> {
    let (openid, channel_id) = match owner {
        Owner::Follower(openid) => (Some(openid), None),
        Owner::Channel(id) => (None, Some(id)),
    };
    sqlx::query_as(concat!(
        "INSERT INTO invite_codes (owner_openid, channel_id, permanent, scene_id, scene_str, quota_slot, ticket, url, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         ON CONFLICT (owner_openid) DO UPDATE SET
            permanent = EXCLUDED.permanent, scene_id = EXCLUDED.scene_id, scene_str = EXCLUDED.scene_str,
            quota_slot = EXCLUDED.quota_slot, ticket = EXCLUDED.ticket, url = EXCLUDED.url,
            expires_at = EXCLUDED.expires_at, image_key = NULL, renewed_at = now()
         RETURNING ",
        columns!()
    ))
    .bind(openid)
    .bind(channel_id)
    .bind(code.permanent)
    .bind(code.scene_id)
    .bind(&code.scene_str)
    .bind(code.quota_slot)
    .bind(&code.ticket)
    .bind(&code.url)
    .bind(code.expires_at)
    .fetch_one(&mut **tx)
    .await
}

/// Records the stored image of a code, unless the code was re-issued meanwhile.
pub async fn set_image(pool: &PgPool, id: i64, ticket: &str, image_key: &str) -> sqlx::Result<()> {
    sqlx::query("UPDATE invite_codes SET image_key = $3 WHERE id = $1 AND ticket = $2")
        .bind(id)
        .bind(ticket)
        .bind(image_key)
        .execute(pool)
        .await
        .map(drop)
}

/// Counts a scan or a follow through a code (channel statistics).
pub async fn count_use(tx: &mut Tx<'_>, id: i64, follow: bool) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE invite_codes SET scans = scans + CASE WHEN $2 THEN 0 ELSE 1 END,
                                follows = follows + CASE WHEN $2 THEN 1 ELSE 0 END
         WHERE id = $1",
    )
    .bind(id)
    .bind(follow)
    .execute(&mut **tx)
    .await
    .map(drop)
}

/// Followers' temporary codes that expire before `before`: the renewal job's work list.
pub async fn expiring_user_codes(
    pool: &PgPool,
    before: DateTime<Utc>,
    limit: i64,
) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar(
        "SELECT owner_openid FROM invite_codes
         WHERE NOT permanent AND owner_openid IS NOT NULL AND expires_at < $1
         ORDER BY expires_at LIMIT $2",
    )
    .bind(before)
    .bind(limit)
    .fetch_all(pool)
    .await
}

pub async fn permanent_in_use(pool: &PgPool) -> sqlx::Result<i64> {
    sqlx::query_scalar("SELECT count(*) FROM invite_codes WHERE permanent")
        .fetch_one(pool)
        .await
}

/// The channel called `name`, if there is one.
pub async fn channel_by_name(db: impl PgExecutor<'_>, name: &str) -> sqlx::Result<Option<i64>> {
    sqlx::query_scalar("SELECT id FROM channels WHERE name = $1")
        .bind(name)
        .fetch_optional(db)
        .await
}

/// Creates a channel; `None` when the name is taken.
pub async fn create_channel(db: impl PgExecutor<'_>, name: &str) -> sqlx::Result<Option<i64>> {
    sqlx::query_scalar(
        "INSERT INTO channels (name) VALUES ($1) ON CONFLICT (name) DO NOTHING RETURNING id",
    )
    .bind(name)
    .fetch_optional(db)
    .await
}

/// Removes a channel that never got its code (WeChat refused), freeing its name.
pub async fn delete_codeless_channel(db: impl PgExecutor<'_>, id: i64) -> sqlx::Result<()> {
    sqlx::query(
        "DELETE FROM channels c WHERE c.id = $1
         AND NOT EXISTS (SELECT 1 FROM invite_codes WHERE channel_id = c.id)",
    )
    .bind(id)
    .execute(db)
    .await
    .map(drop)
}

#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct ChannelRow {
    pub id: i64,
    pub name: String,
    pub scene_str: Option<String>,
    pub image_key: Option<String>,
    pub scans: i64,
    pub follows: i64,
    pub created_at: DateTime<Utc>,
}

pub async fn channels(pool: &PgPool) -> sqlx::Result<Vec<ChannelRow>> {
    sqlx::query_as(
        "SELECT c.id, c.name, i.scene_str, i.image_key, COALESCE(i.scans, 0) AS scans,
                COALESCE(i.follows, 0) AS follows, c.created_at
         FROM channels c LEFT JOIN invite_codes i ON i.channel_id = c.id ORDER BY c.id",
    )
    .fetch_all(pool)
    .await
}
