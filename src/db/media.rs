//! `wechat_media`: which stored image WeChat already holds as temporary media, and since when.

use chrono::{DateTime, Utc};
use sqlx::PgExecutor;

use super::Tx;

/// The media_id of `content_key` if it was uploaded after `since` (i.e. is still usable).
pub async fn uploaded_since(
    db: impl PgExecutor<'_>,
    content_key: &str,
    since: DateTime<Utc>,
) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar(
        "SELECT media_id FROM wechat_media WHERE content_key = $1 AND uploaded_at > $2",
    )
    .bind(content_key)
    .bind(since)
    .fetch_optional(db)
    .await
}

pub async fn save(
    db: impl PgExecutor<'_>,
    content_key: &str,
    media_id: &str,
    uploaded_at: DateTime<Utc>,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO wechat_media (content_key, media_id, uploaded_at) VALUES ($1, $2, $3)
         ON CONFLICT (content_key) DO UPDATE SET media_id = EXCLUDED.media_id, uploaded_at = EXCLUDED.uploaded_at",
    )
    .bind(content_key)
    .bind(media_id)
    .bind(uploaded_at)
    .execute(db)
    .await
    .map(drop)
}

/// Serialises uploads of one image across every instance until the transaction ends, so a
/// poster asked for twice at once is uploaded once.
pub async fn lock(tx: &mut Tx<'_>, content_key: &str) -> sqlx::Result<()> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('wechat_media:' || $1, 0))")
        .bind(content_key)
        .execute(&mut **tx)
        .await
        .map(drop)
}
