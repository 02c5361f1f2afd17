//! Grants delayed rewards once due, on every instance: each pass takes a page of inviters with
//! a due waiting tier, holds their leaderboard rows (so a second instance settling the same
//! inviters waits and then finds nothing waiting), and in one transaction grants each tier the
//! inviter's live count still reaches — emitting `reward.granted` and opening their notice, as
//! the push path does — or lets it lapse. Held and blocked inviters are left to an operator.

use std::collections::hash_map::Entry;
use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use anyhow::Context;
use tokio::sync::watch;

use crate::db;
use crate::domain::{OpenId, RiskStatus};
use crate::referral::rules::{settle_delayed, DelayedTier};
use crate::services::Services;
use crate::state::AppState;

/// Inviters settled per transaction.
const PAGE: i64 = 100;

pub async fn run(state: AppState, mut shutdown: watch::Receiver<bool>) {
    let every = Duration::from_secs(state.settings.delayed_rewards_every_secs);
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shutdown.changed() => return,
        }
        loop {
            match pass(&state).await {
                Ok(settled) if settled.inviters as i64 == PAGE => continue,
                Ok(_) => break,
                Err(e) => {
                    tracing::warn!(error = ?e, "granting delayed rewards failed");
                    break;
                }
            }
        }
    }
}

/// What one pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Settled {
    /// Inviters with a due tier the pass looked at.
    pub inviters: usize,
    pub granted: Vec<i64>,
    pub lapsed: usize,
}

/// Settles one page of due tiers in one transaction.
pub async fn pass(services: &Services) -> anyhow::Result<Settled> {
    let inviters = db::delayed::due_inviters(&services.pool, PAGE)
        .await
        .context("finding due delayed rewards")?;
    let mut settled = Settled {
        inviters: inviters.len(),
        ..Settled::default()
    };
    if inviters.is_empty() {
        return Ok(settled);
    }
    let mut tx = services.pool.begin().await?;
    let due = db::delayed::lock_due(&mut tx, &inviters)
        .await
        .context("holding due delayed rewards")?;
    let mut tiers: HashMap<i64, Vec<db::campaigns::Tier>> = HashMap::new();
    let mut marks: Vec<(i64, String, &'static str, Option<i64>)> = Vec::new();
    let mut told: BTreeSet<String> = BTreeSet::new();
    for d in &due {
        let withheld = RiskStatus::parse(&d.risk_status).is_some_and(RiskStatus::withholds);
        match settle_delayed(d.invites, d.threshold, withheld, d.granted) {
            DelayedTier::Wait => {}
            DelayedTier::AlreadyGranted => {
                marks.push((d.tier_id, d.openid.clone(), "granted", None))
            }
            DelayedTier::Lapse => {
                settled.lapsed += 1;
                marks.push((d.tier_id, d.openid.clone(), "lapsed", None));
            }
            DelayedTier::Grant => {
                let Ok(openid) = OpenId::parse(&d.openid) else {
                    continue;
                };
                if let Entry::Vacant(slot) = tiers.entry(d.campaign_id) {
                    slot.insert(db::campaigns::tiers(&mut *tx, d.campaign_id).await?);
                }
                let Some(tier) = tiers[&d.campaign_id].iter().find(|t| t.id == d.tier_id) else {
                    continue;
                };
                let grant = db::campaigns::grant(&mut tx, tier, &openid)
                    .await
                    .context("granting a delayed reward")?;
                let id = grant.map(|g| g.id);
                settled.granted.extend(id);
                if id.is_some() {
                    told.insert(d.openid.clone());
                }
                marks.push((d.tier_id, d.openid.clone(), "granted", id));
            }
        }
    }
    let marks: Vec<(i64, &str, &str, Option<i64>)> = marks
        .iter()
        .map(|(t, o, s, g)| (*t, o.as_str(), *s, *g))
        .collect();
    db::delayed::settle(&mut tx, &marks)
        .await
        .context("settling delayed rewards")?;
    db::webhooks::record_batch(&mut tx, &[], &[], &[], &settled.granted, &[])
        .await
        .context("recording reward.granted")?;
    for openid in &told {
        if let Ok(openid) = OpenId::parse(openid) {
            db::risk::queue_notice(&mut tx, &openid).await?;
        }
    }
    tx.commit().await.context("committing delayed rewards")?;
    if !told.is_empty() {
        services.outbox_wake.notify_one();
    }
    Ok(settled)
}
