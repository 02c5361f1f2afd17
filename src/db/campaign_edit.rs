//! Writing campaigns from the dashboard: the campaign with its texts, poster layout and reward
//! tiers in one transaction, the poster background, and what the edit page shows.

use serde_json::Value;
use sqlx::PgPool;

use super::campaigns::CampaignTerms;
use super::Tx;

/// A campaign as the dashboard's form submits it, already validated.
#[derive(Debug, Clone)]
pub struct CampaignInput {
    pub terms: CampaignTerms,
    pub poster_layout: Value,
    pub tiers: Vec<TierInput>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TierInput {
    /// An existing tier to change; `None` adds one.
    pub id: Option<i64>,
    pub threshold: i32,
    pub name: String,
    pub uses_codes: bool,
    pub claim_instructions: String,
    pub redeem_in_store: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum SaveError {
    /// A tier that rewards were already granted for cannot be removed.
    #[error("tier {0} has grants")]
    TierInUse(i64),
    #[error("two tiers have the same threshold")]
    DuplicateThreshold,
    #[error("no such campaign")]
    NotFound,
    /// Another campaign (not the default) runs during part of this one's period.
    #[error("overlaps campaign {}", .0.name)]
    Overlaps(Period),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// A campaign's name and period, as a refusal names it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Period {
    pub name: String,
    pub starts_at: chrono::DateTime<chrono::Utc>,
    pub ends_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// One campaign at a time: a campaign other than the default may not share any moment with
/// another one (periods are half-open, no end = open-ended). The default campaign only stands
/// in when none runs, so it is exempt. The lock makes two concurrent saves see each other.
async fn overlapping(
    tx: &mut Tx<'_>,
    id: Option<i64>,
    c: &CampaignInput,
) -> sqlx::Result<Option<Period>> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('fission.campaign_periods'))")
        .execute(&mut **tx)
        .await?;
    sqlx::query_as(
        "SELECT name, starts_at, ends_at FROM campaigns
         WHERE NOT is_default AND id IS DISTINCT FROM $1
           AND NOT EXISTS (SELECT 1 FROM campaigns d WHERE d.id = $1 AND d.is_default)
           AND tstzrange(starts_at, ends_at) && tstzrange($2, $3)
         ORDER BY starts_at, id LIMIT 1",
    )
    .bind(id)
    .bind(c.terms.starts_at)
    .bind(c.terms.ends_at)
    .fetch_optional(&mut **tx)
    .await
}

fn map_unique(e: sqlx::Error) -> SaveError {
    if super::is_unique_violation(&e, "reward_tiers_campaign_id_threshold_key") {
        SaveError::DuplicateThreshold
    } else {
        SaveError::Db(e)
    }
}

pub async fn create(pool: &PgPool, c: &CampaignInput) -> Result<i64, SaveError> {
    let mut tx = pool.begin().await?;
    if let Some(other) = overlapping(&mut tx, None, c).await? {
        return Err(SaveError::Overlaps(other));
    }
    let id = write(&mut tx, None, c).await?.ok_or(SaveError::NotFound)?;
    save_tiers(&mut tx, id, &c.tiers, &[]).await?;
    tx.commit().await?;
    Ok(id)
}

/// Updates the campaign; tiers in `removed` are deleted unless rewards were granted for them.
pub async fn update(
    pool: &PgPool,
    id: i64,
    c: &CampaignInput,
    removed: &[i64],
) -> Result<(), SaveError> {
    let mut tx = pool.begin().await?;
    if let Some(other) = overlapping(&mut tx, Some(id), c).await? {
        return Err(SaveError::Overlaps(other));
    }
    if write(&mut tx, Some(id), c).await?.is_none() {
        return Err(SaveError::NotFound);
    }
    save_tiers(&mut tx, id, &c.tiers, removed).await?;
    tx.commit().await?;
    Ok(())
}

/// Writes the campaign's own fields: a new campaign (`id` None) or an existing one. Returns its
/// id, or `None` when `id` names no campaign.
async fn write(tx: &mut Tx<'_>, id: Option<i64>, c: &CampaignInput) -> sqlx::Result<Option<i64>> {
    sqlx::query_scalar(
        "WITH input AS (
             SELECT $2::text AS name, $3::timestamptz AS starts_at, $4::timestamptz AS ends_at,
                    $5::int AS revoke_window_days, $6::boolean AS revoke_rewards,
                    $7::text AS welcome_text, $8::text AS credit_text, $9::text AS reward_text,
                    $10::text AS rules, $11::text AS template_id, $12::jsonb AS poster_layout,
                    $13::text AS template_fields, $14::text AS subscribe_template_id,
                    $15::text AS subscribe_fields),
         updated AS (
             UPDATE campaigns c SET name = i.name, starts_at = i.starts_at, ends_at = i.ends_at,
                    revoke_window_days = i.revoke_window_days, revoke_rewards = i.revoke_rewards,
                    welcome_text = i.welcome_text, credit_text = i.credit_text,
                    reward_text = i.reward_text, rules = i.rules, template_id = i.template_id,
                    poster_layout = i.poster_layout, template_fields = i.template_fields,
                    subscribe_template_id = i.subscribe_template_id,
                    subscribe_fields = i.subscribe_fields
             FROM input i WHERE $1::bigint IS NOT NULL AND c.id = $1
             RETURNING c.id),
         inserted AS (
             INSERT INTO campaigns (name, starts_at, ends_at, revoke_window_days, revoke_rewards,
                    welcome_text, credit_text, reward_text, rules, template_id, poster_layout,
                    template_fields, subscribe_template_id, subscribe_fields)
             SELECT * FROM input WHERE $1::bigint IS NULL
             RETURNING id)
         SELECT id FROM updated UNION ALL SELECT id FROM inserted",
    )
    .bind(id)
    .bind(&c.terms.name)
    .bind(c.terms.starts_at)
    .bind(c.terms.ends_at)
    .bind(c.terms.revoke_window_days)
    .bind(c.terms.revoke_rewards)
    .bind(&c.terms.welcome_text)
    .bind(&c.terms.credit_text)
    .bind(&c.terms.reward_text)
    .bind(&c.terms.rules)
    .bind(&c.terms.template_id)
    .bind(&c.poster_layout)
    .bind(&c.terms.template_fields)
    .bind(&c.terms.subscribe_template_id)
    .bind(&c.terms.subscribe_fields)
    .fetch_optional(&mut **tx)
    .await
}

async fn save_tiers(
    tx: &mut Tx<'_>,
    campaign: i64,
    tiers: &[TierInput],
    removed: &[i64],
) -> Result<(), SaveError> {
    for &tier in removed {
        let deleted = sqlx::query(
            "DELETE FROM reward_tiers t WHERE t.id = $1 AND t.campaign_id = $2
               AND NOT EXISTS (SELECT 1 FROM reward_grants g WHERE g.tier_id = t.id)",
        )
        .bind(tier)
        .bind(campaign)
        .execute(&mut **tx)
        .await?
        .rows_affected();
        if deleted == 0 {
            return Err(SaveError::TierInUse(tier));
        }
    }
    for t in tiers {
        let query = match t.id {
            Some(_) => sqlx::query(
                "UPDATE reward_tiers SET threshold = $2, name = $3, uses_codes = $4,
                        claim_instructions = $5, redeem_in_store = $6
                 WHERE id = $7 AND campaign_id = $1",
            ),
            None => sqlx::query(
                "INSERT INTO reward_tiers (campaign_id, threshold, name, uses_codes,
                        claim_instructions, redeem_in_store)
                 VALUES ($1, $2, $3, $4, $5, $6)",
            ),
        };
        let query = query
            .bind(campaign)
            .bind(t.threshold)
            .bind(&t.name)
            .bind(t.uses_codes)
            .bind(&t.claim_instructions)
            .bind(t.redeem_in_store);
        let query = match t.id {
            Some(id) => query.bind(id),
            None => query,
        };
        query.execute(&mut **tx).await.map_err(map_unique)?;
    }
    Ok(())
}

/// Ends a running campaign now. `false` when `id` is not one that can be ended: unknown, the
/// default campaign (the stand-in when none runs), or not running.
pub async fn end_now(pool: &PgPool, id: i64) -> sqlx::Result<bool> {
    let ended: Option<i64> = sqlx::query_scalar(
        "UPDATE campaigns SET ends_at = now()
         WHERE id = $1 AND NOT is_default AND starts_at <= now()
           AND (ends_at IS NULL OR ends_at > now())
         RETURNING id",
    )
    .bind(id)
    .fetch_optional(pool)
    .await?;
    Ok(ended.is_some())
}

pub async fn set_poster_background(pool: &PgPool, id: i64, key: &str) -> sqlx::Result<bool> {
    sqlx::query("UPDATE campaigns SET poster_background_key = $2 WHERE id = $1")
        .bind(id)
        .bind(key)
        .execute(pool)
        .await
        .map(|r| r.rows_affected() == 1)
}

/// A tier with how many rewards it granted (codes left: `campaigns::stock`).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TierSummary {
    pub id: i64,
    pub threshold: i32,
    pub name: String,
    pub uses_codes: bool,
    pub granted: i64,
}

pub async fn tier_summaries(pool: &PgPool, campaign: i64) -> sqlx::Result<Vec<TierSummary>> {
    sqlx::query_as(
        "SELECT t.id, t.threshold, t.name, t.uses_codes,
                (SELECT count(*) FROM reward_grants g WHERE g.tier_id = t.id) AS granted
         FROM reward_tiers t WHERE t.campaign_id = $1 ORDER BY t.threshold",
    )
    .bind(campaign)
    .fetch_all(pool)
    .await
}

/// Whether `tier` belongs to `campaign`.
pub async fn tier_of(pool: &PgPool, campaign: i64, tier: i64) -> sqlx::Result<bool> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM reward_tiers WHERE id = $1 AND campaign_id = $2)",
    )
    .bind(tier)
    .bind(campaign)
    .fetch_one(pool)
    .await
}
