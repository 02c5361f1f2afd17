//! The poster settings of a campaign (`campaigns.poster_background_key`, `poster_layout`).

use serde_json::Value;
use sqlx::PgExecutor;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PosterSettings {
    /// Storage key of the background; `None` = the bundled default.
    pub poster_background_key: Option<String>,
    /// JSON as stored; parsed (and checked) by the poster code.
    pub poster_layout: Value,
}

pub async fn of_campaign(
    db: impl PgExecutor<'_>,
    campaign_id: i64,
) -> sqlx::Result<Option<PosterSettings>> {
    sqlx::query_as("SELECT poster_background_key, poster_layout FROM campaigns WHERE id = $1")
        .bind(campaign_id)
        .fetch_optional(db)
        .await
}
