//! Campaigns and their reward tiers, code pools and grants.

use chrono::{DateTime, Utc};
use sqlx::{PgExecutor, PgPool};

use super::Tx;
use crate::domain::{CampaignId, OpenId};

/// What an operator sets for a campaign: shared by the stored campaign and the dashboard's
/// input for one.
#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct CampaignTerms {
    pub name: String,
    pub starts_at: DateTime<Utc>,
    pub ends_at: Option<DateTime<Utc>>,
    pub revoke_window_days: i32,
    pub revoke_rewards: bool,
    pub welcome_text: String,
    pub credit_text: String,
    pub reward_text: String,
    pub rules: String,
    /// Category template for notices when no customer-service message can be sent, and its
    /// keyword mapping (`thing1={invitee}` lines).
    pub template_id: Option<String>,
    pub template_fields: String,
    /// Subscription-notice template the invite page asks followers to accept, and its mapping.
    pub subscribe_template_id: Option<String>,
    pub subscribe_fields: String,
}

#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct Campaign {
    pub id: i64,
    /// The always-on campaign that runs when no configured one does.
    pub is_default: bool,
    #[sqlx(flatten)]
    #[serde(flatten)]
    pub terms: CampaignTerms,
}

impl std::ops::Deref for Campaign {
    type Target = CampaignTerms;

    fn deref(&self) -> &CampaignTerms {
        &self.terms
    }
}

macro_rules! columns {
    () => {
        "id, name, is_default, starts_at, ends_at, revoke_window_days, revoke_rewards, welcome_text, credit_text, reward_text, rules, template_id, template_fields, subscribe_template_id, subscribe_fields"
    };
}

#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct Tier {
    pub id: i64,
    pub campaign_id: i64,
    pub threshold: i32,
    pub name: String,
    pub uses_codes: bool,
    /// What the follower is told to do to claim the reward (shown on their page once won).
    pub claim_instructions: String,
    /// Staff hand the reward over in person, redeeming it with the code on the follower's page.
    pub redeem_in_store: bool,
}

macro_rules! tier_columns {
    () => {
        "id, campaign_id, threshold, name, uses_codes, claim_instructions, redeem_in_store"
    };
}

/// The campaign that decides a push at `at`: a configured campaign running then (the latest
/// to start wins), otherwise the always-on default campaign if it has not been ended.
pub async fn active_at(
    db: impl PgExecutor<'_>,
    at: DateTime<Utc>,
) -> sqlx::Result<Option<Campaign>> {
    sqlx::query_as(concat!(
        "SELECT ",
        columns!(),
        " FROM campaigns
         WHERE starts_at <= $1 AND (ends_at IS NULL OR ends_at > $1)
         ORDER BY is_default ASC, starts_at DESC, id DESC LIMIT 1"
    ))
    .bind(at)
    .fetch_optional(db)
    .await
}

/// Every campaign with its tiers (the push path's cached copy; there are few).
pub async fn all_with_tiers(tx: &mut Tx<'_>) -> sqlx::Result<Vec<(Campaign, Vec<Tier>)>> {
    let campaigns: Vec<Campaign> = sqlx::query_as(concat!(
        "SELECT ",
        columns!(),
        " FROM campaigns ORDER BY id"
    ))
    .fetch_all(&mut **tx)
    .await?;
    let tiers: Vec<Tier> = sqlx::query_as(concat!(
        "SELECT ",
        tier_columns!(),
        " FROM reward_tiers ORDER BY campaign_id, threshold"
    ))
    .fetch_all(&mut **tx)
    .await?;
    let mut by_campaign: std::collections::HashMap<i64, Vec<Tier>> = Default::default();
    for tier in tiers {
        by_campaign.entry(tier.campaign_id).or_default().push(tier);
    }
    Ok(campaigns
        .into_iter()
        .map(|c| {
            let tiers = by_campaign.remove(&c.id).unwrap_or_default();
            (c, tiers)
        })
        .collect())
}

/// The tiers already granted to any of `openids` in `campaign`: (tier id, openid).
pub async fn granted_among(
    tx: &mut Tx<'_>,
    campaign: CampaignId,
    openids: &[&OpenId],
) -> sqlx::Result<Vec<(i64, String)>> {
    sqlx::query_as(
        "SELECT tier_id, openid FROM reward_grants WHERE campaign_id = $1 AND openid = ANY($2)",
    )
    .bind(campaign.0)
    .bind(openids.iter().map(|o| o.as_str()).collect::<Vec<_>>())
    .fetch_all(&mut **tx)
    .await
}

pub async fn get(db: impl PgExecutor<'_>, id: i64) -> sqlx::Result<Option<Campaign>> {
    sqlx::query_as(concat!(
        "SELECT ",
        columns!(),
        " FROM campaigns WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(db)
    .await
}

pub async fn list(pool: &PgPool) -> sqlx::Result<Vec<Campaign>> {
    sqlx::query_as(concat!(
        "SELECT ",
        columns!(),
        " FROM campaigns ORDER BY starts_at DESC, id DESC"
    ))
    .fetch_all(pool)
    .await
}

pub async fn tiers(db: impl PgExecutor<'_>, campaign_id: i64) -> sqlx::Result<Vec<Tier>> {
    sqlx::query_as(concat!(
        "SELECT ",
        tier_columns!(),
        " FROM reward_tiers WHERE campaign_id = $1 ORDER BY threshold"
    ))
    .bind(campaign_id)
    .fetch_all(db)
    .await
}

pub async fn add_tier(
    pool: &PgPool,
    campaign_id: i64,
    threshold: i32,
    name: &str,
    uses_codes: bool,
) -> sqlx::Result<Tier> {
    sqlx::query_as(concat!(
        "INSERT INTO reward_tiers (campaign_id, threshold, name, uses_codes) VALUES ($1, $2, $3, $4)
         RETURNING ",
        tier_columns!()
    ))
    .bind(campaign_id)
    .bind(threshold)
    .bind(name)
    .bind(uses_codes)
    .fetch_one(pool)
    .await
}

/// Adds codes to a tier's pool; duplicates of codes already there are skipped. Returns how many were added.
pub async fn add_reward_codes(pool: &PgPool, tier_id: i64, codes: &[String]) -> sqlx::Result<u64> {
    sqlx::query(
        "INSERT INTO reward_codes (tier_id, code) SELECT $1, unnest($2::text[])
         ON CONFLICT (tier_id, code) DO NOTHING",
    )
    .bind(tier_id)
    .bind(codes)
    .execute(pool)
    .await
    .map(|r| r.rows_affected())
}

/// Codes left in a tier's pool.
pub async fn stock(pool: &PgPool, tier_id: i64) -> sqlx::Result<i64> {
    sqlx::query_scalar(
        "SELECT count(*) FROM reward_codes WHERE tier_id = $1 AND granted_to IS NULL",
    )
    .bind(tier_id)
    .fetch_one(pool)
    .await
}

/// Where a reward grant stands (the `reward_grants.status` column).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GrantStatus {
    Granted,
    /// The tier's code pool was empty: operators follow up by hand.
    OutOfStock,
    /// Taken back (the campaign revokes rewards when friends leave in the window).
    Revoked,
}

impl GrantStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            GrantStatus::Granted => "granted",
            GrantStatus::OutOfStock => "out_of_stock",
            GrantStatus::Revoked => "revoked",
        }
    }

    pub fn is_granted(&self) -> bool {
        *self == GrantStatus::Granted
    }
}

impl TryFrom<String> for GrantStatus {
    type Error = String;

    fn try_from(value: String) -> Result<Self, String> {
        match value.as_str() {
            "granted" => Ok(GrantStatus::Granted),
            "out_of_stock" => Ok(GrantStatus::OutOfStock),
            "revoked" => Ok(GrantStatus::Revoked),
            _ => Err(format!("unknown grant status {value:?}")),
        }
    }
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Grant {
    pub id: i64,
    pub tier_id: i64,
    pub status: GrantStatus,
    pub code: Option<String>,
}

/// Grants `tier` to `openid` once. A tier with a code pool draws one code; concurrent grants
/// skip each other's locked codes. An empty pool records `out_of_stock` (visible to operators)
/// instead of failing the credit. Returns `None` if the tier was already granted.
pub async fn grant(tx: &mut Tx<'_>, tier: &Tier, openid: &OpenId) -> sqlx::Result<Option<Grant>> {
    let grant_id: Option<i64> = sqlx::query_scalar(
        "INSERT INTO reward_grants (tier_id, campaign_id, openid, status) VALUES ($1, $2, $3, 'granted')
         ON CONFLICT (tier_id, openid) DO NOTHING RETURNING id",
    )
    .bind(tier.id)
    .bind(tier.campaign_id)
    .bind(openid)
    .fetch_optional(&mut **tx)
    .await?;
    let Some(id) = grant_id else { return Ok(None) };
    if !tier.uses_codes {
        return Ok(Some(Grant {
            id,
            tier_id: tier.id,
            status: GrantStatus::Granted,
            code: None,
        }));
    }
    let code: Option<String> = sqlx::query_scalar(
        "UPDATE reward_codes SET granted_to = $2, granted_at = now()
         WHERE id = (SELECT id FROM reward_codes WHERE tier_id = $1 AND granted_to IS NULL
                     ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)
         RETURNING code",
    )
    .bind(tier.id)
    .bind(openid)
    .fetch_optional(&mut **tx)
    .await?;
    let status = if code.is_some() {
        GrantStatus::Granted
    } else {
        GrantStatus::OutOfStock
    };
    sqlx::query("UPDATE reward_grants SET code = $2, status = $3 WHERE id = $1")
        .bind(id)
        .bind(&code)
        .bind(status.as_str())
        .execute(&mut **tx)
        .await?;
    Ok(Some(Grant {
        id,
        tier_id: tier.id,
        status,
        code,
    }))
}

#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct GrantView {
    pub id: i64,
    pub tier_name: String,
    pub threshold: i32,
    #[sqlx(try_from = "String")]
    pub status: GrantStatus,
    pub code: Option<String>,
    pub granted_at: DateTime<Utc>,
    pub claim_instructions: String,
    pub redeem_in_store: bool,
    /// When staff redeemed it (in-store rewards only).
    pub redeemed_at: Option<DateTime<Utc>>,
}

pub async fn grants_of(
    pool: &PgPool,
    openid: &str,
    campaign_id: i64,
) -> sqlx::Result<Vec<GrantView>> {
    sqlx::query_as(
        "SELECT g.id, t.name AS tier_name, t.threshold, g.status, g.code, g.granted_at,
                t.claim_instructions, t.redeem_in_store, r.redeemed_at
         FROM reward_grants g JOIN reward_tiers t ON t.id = g.tier_id
         LEFT JOIN reward_redemptions r ON r.grant_id = g.id
         WHERE g.openid = $1 AND g.campaign_id = $2 ORDER BY t.threshold",
    )
    .bind(openid)
    .bind(campaign_id)
    .fetch_all(pool)
    .await
}
