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

/// Attempts at a decision that loses a race before its error is the operator's.
const ATTEMPTS: u32 = 5;

/// Decides, in one transaction. A block takes the inviter's leaderboard row and then every
/// credit of theirs, while the push path takes a leaving friend's credit and then the
/// leaderboard row: PostgreSQL may abort either as a deadlock. The push path tries its batch
/// again; so does this, a few times, before the operator sees an error.
pub async fn decide(
    pool: &PgPool,
    campaign: CampaignId,
    openid: &OpenId,
    action: RiskAction,
    operator: &str,
) -> anyhow::Result<Reviewed> {
    let mut attempt = 1;
    loop {
        match decide_once(pool, campaign, openid, action, operator).await {
            Err(e) if attempt < ATTEMPTS && db::lost_a_race(&e) => {
                tracing::debug!(
                    error = format!("{e:#}"),
                    attempt,
                    "retrying a review decision"
                );
                tokio::time::sleep(std::time::Duration::from_millis(
                    rand::random::<u64>() % (10 * u64::from(attempt)),
                ))
                .await;
                attempt += 1;
            }
            done => return done,
        }
    }
}

async fn decide_once(
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
