//! Campaigns as operators change them: the writes behind the dashboard's campaign pages. The
//! push path sees every change on its next batch (`campaign_version`).

use crate::db;
use crate::db::campaign_edit::{CampaignInput, SaveError};
use crate::services::Services;

/// Creates a campaign with its tiers; returns its id.
pub async fn create(services: &Services, input: &CampaignInput) -> Result<i64, SaveError> {
    db::campaign_edit::create(&services.pool, input).await
}

/// Saves a campaign and its tiers, removing the tiers in `removed` (refused for a tier that
/// rewards were granted for).
pub async fn update(
    services: &Services,
    id: i64,
    input: &CampaignInput,
    removed: &[i64],
) -> Result<(), SaveError> {
    db::campaign_edit::update(&services.pool, id, input, removed).await
}

/// Ends a running campaign now; `false` for the default campaign or one not running.
pub async fn end(services: &Services, id: i64) -> sqlx::Result<bool> {
    db::campaign_edit::end_now(&services.pool, id).await
}

/// Sets the poster background (a stored image's key); `false` when there is no such campaign.
pub async fn set_poster_background(services: &Services, id: i64, key: &str) -> sqlx::Result<bool> {
    db::campaign_edit::set_poster_background(&services.pool, id, key).await
}

/// Adds codes to a tier's pool; returns how many were new.
pub async fn add_reward_codes(
    services: &Services,
    tier: i64,
    codes: &[String],
) -> sqlx::Result<u64> {
    db::campaigns::add_reward_codes(&services.pool, tier, codes).await
}
