//! An operator's decision about an inviter, from the review queue: checked against where the
//! inviter stands (under their rows' locks) and recorded with what it does, in one transaction.

use anyhow::Context;
use sqlx::PgPool;

use super::risk;
use crate::db;
use crate::domain::{CampaignId, OpenId, RiskAction};

/// What became of a decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reviewed {
    Done(db::risk::Decided),
    /// The decision does not fit where the inviter stands (e.g. approving someone blocked).
    NotApplicable,
}

pub async fn decide(
    pool: &PgPool,
    campaign: CampaignId,
    openid: &OpenId,
    action: RiskAction,
    operator: &str,
) -> anyhow::Result<Reviewed> {
    let mut tx = pool.begin().await.context("starting a review decision")?;
    let current = db::risk::lock(&mut tx, campaign, openid)
        .await
        .context("reading where the inviter stands")?;
    if !risk::allowed(current, action) {
        return Ok(Reviewed::NotApplicable);
    }
    let decided = db::risk::decide(
        &mut tx,
        &db::risk::Decision {
            campaign,
            openid,
            action: Some(action),
            operator: Some(operator),
            held_tiers: &[],
        },
    )
    .await
    .context("recording the decision")?;
    tx.commit().await.context("committing the decision")?;
    Ok(Reviewed::Done(decided))
}
