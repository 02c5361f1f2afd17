//! `wechat_media`: which stored image WeChat already holds as temporary media, and since when.

use chrono::{DateTime, Utc};
use sqlx::PgExecutor;

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
