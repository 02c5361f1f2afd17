//! `reward_redemptions`: the redemption code of each in-store reward shown to its follower, and
//! the one redemption staff may record for it.

use chrono::{DateTime, Utc};
use sqlx::PgPool;

/// The redemption code's token for `grant`: the stored one, or `new_token` stored now (the
/// first time the follower's page shows the reward).
pub async fn token_for(pool: &PgPool, grant: i64, new_token: &str) -> sqlx::Result<String> {
    sqlx::query_scalar(
        "WITH inserted AS (
             INSERT INTO reward_redemptions (grant_id, token) VALUES ($1, $2)
             ON CONFLICT (grant_id) DO NOTHING RETURNING token)
         SELECT token FROM inserted
         UNION ALL SELECT token FROM reward_redemptions WHERE grant_id = $1
         LIMIT 1",
    )
    .bind(grant)
    .bind(new_token)
    .fetch_one(pool)
    .await
}

/// What the staff page shows about a scanned code.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Redemption {
    pub grant_id: i64,
    pub tier_name: String,
    pub campaign_name: String,
    pub nickname: Option<String>,
    /// `reward_grants.status`: only a `granted` reward can be redeemed.
    pub status: String,
    pub redeem_in_store: bool,
    pub redeemed_at: Option<DateTime<Utc>>,
    /// The account that redeemed it.
    pub redeemed_by: Option<String>,
}

pub async fn by_token(pool: &PgPool, token: &str) -> sqlx::Result<Option<Redemption>> {
    sqlx::query_as(
        "SELECT r.grant_id, t.name AS tier_name, c.name AS campaign_name, u.nickname, g.status,
                t.redeem_in_store, r.redeemed_at, a.username AS redeemed_by
         FROM reward_redemptions r
         JOIN reward_grants g ON g.id = r.grant_id
         JOIN reward_tiers t ON t.id = g.tier_id
         JOIN campaigns c ON c.id = g.campaign_id
         LEFT JOIN users u ON u.openid = g.openid
         LEFT JOIN admin_users a ON a.id = r.redeemed_by
         WHERE r.token = $1",
    )
    .bind(token)
    .fetch_optional(pool)
    .await
}

/// Records the redemption by `account`, once: `false` when it was already redeemed (or the
/// reward is no longer the follower's, or not redeemed in store). Concurrent scans cannot both
/// succeed: the row is updated only while `redeemed_at` is still empty.
pub async fn redeem(pool: &PgPool, token: &str, account: i64) -> sqlx::Result<bool> {
    sqlx::query(
        "UPDATE reward_redemptions r SET redeemed_at = now(), redeemed_by = $2
         FROM reward_grants g JOIN reward_tiers t ON t.id = g.tier_id
         WHERE r.token = $1 AND r.redeemed_at IS NULL AND g.id = r.grant_id
           AND g.status = 'granted' AND t.redeem_in_store",
    )
    .bind(token)
    .bind(account)
    .execute(pool)
    .await
    .map(|r| r.rows_affected() == 1)
}
