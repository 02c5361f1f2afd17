//! Risk screening of a batch: after its credits and revocations are counted, the inviters they
//! concern have their counters updated in one statement, their signals read against their
//! campaign's policy (`referral::risk`, pure), and any decision recorded through
//! `db::risk::decide`. Costs nothing for a batch without credits or revocations, one statement
//! for one whose inviters fire nothing. Rows are taken after the leaderboard rows and before
//! the grants, the push path's global order.

use std::collections::{BTreeMap, HashMap, HashSet};

use anyhow::Context;
use chrono::{DateTime, Utc};

use super::plan::PlannedCredit;
use crate::db::{self, Tx};
use crate::domain::{CampaignId, OpenId, RiskPolicy, RiskStatus};
use crate::referral::risk::{self, Counters, Thresholds};
use crate::referral::rules::CampaignRules;

/// Inviters of the batch whose rewards are withheld (held or blocked), and the credits
/// cancelled because their inviter is blocked (reported as revocations).
#[derive(Debug, Default)]
pub struct Screen {
    withheld: HashSet<(CampaignId, OpenId)>,
    pub cancelled: Vec<i64>,
}

impl Screen {
    pub fn withholds(&self, campaign: CampaignId, inviter: &OpenId) -> bool {
        self.withheld.contains(&(campaign, inviter.clone()))
    }
}

/// `lost` has one entry per credit revoked because the friend left within the window;
/// `counts` is each touched leaderboard row's count after the batch.
pub async fn screen(
    tx: &mut Tx<'_>,
    campaigns: &[CampaignRules],
    credited: &[(&PlannedCredit, i64)],
    lost: &[(CampaignId, OpenId)],
    counts: &HashMap<(CampaignId, String), i32>,
) -> anyhow::Result<Screen> {
    if credited.is_empty() && lost.is_empty() {
        return Ok(Screen::default());
    }
    let mut added: BTreeMap<(i64, &OpenId), (i32, DateTime<Utc>)> = BTreeMap::new();
    for (c, _) in credited {
        let e = added.entry((c.campaign.0, &c.inviter)).or_insert((0, c.at));
        e.0 += 1;
        e.1 = e.1.max(c.at);
    }
    let credits: Vec<(CampaignId, &OpenId, DateTime<Utc>)> = credited
        .iter()
        .map(|(c, _)| (c.campaign, &c.inviter, c.at))
        .collect();
    let lost: Vec<(CampaignId, &OpenId)> = lost.iter().map(|(c, o)| (*c, o)).collect();
    let observed = db::risk::observe(tx, &credits, &lost, risk::RECENT_KEPT)
        .await
        .context("counting the inviters' risk signals")?;

    let mut screen = Screen::default();
    let mut fired = Vec::new();
    let mut verdicts = Vec::new();
    for row in &observed {
        let Ok(inviter) = OpenId::parse(&row.openid) else {
            continue;
        };
        let campaign = CampaignId(row.campaign_id);
        let (new_credits, latest) = added
            .get(&(row.campaign_id, &inviter))
            .copied()
            .map_or((0, None), |(n, at)| (n, Some(at)));
        let thresholds = thresholds(row);
        let counters = Counters {
            recent: row.recent.clone(),
            friends: row.friends,
            friends_left: row.friends_left,
        };
        let signals = risk::signals(&counters, &thresholds, latest.unwrap_or_else(Utc::now));
        let current = RiskStatus::parse(&row.status).unwrap_or(RiskStatus::Ok);
        let verdict = risk::assess(current, row.cleared, &thresholds, &signals, new_credits > 0);
        if verdict.status.withholds() {
            screen.withheld.insert((campaign, inviter.clone()));
        }
        fired.extend(
            signals
                .into_iter()
                .map(|s| (campaign, row.openid.as_str(), s)),
        );
        verdicts.push((campaign, inviter, verdict, new_credits));
    }
    let fired_refs: Vec<_> = fired.iter().map(|(c, o, s)| (*c, *o, s)).collect();
    db::risk::record_signals(tx, &fired_refs)
        .await
        .context("recording risk signals")?;

    for (campaign, inviter, verdict, new_credits) in verdicts {
        let held_tiers = if verdict.status.withholds() {
            newly_reached(campaigns, campaign, &inviter, new_credits, counts)
        } else {
            Vec::new()
        };
        if verdict.action.is_some() || !held_tiers.is_empty() {
            db::risk::decide(
                tx,
                &db::risk::Decision {
                    campaign,
                    openid: &inviter,
                    action: verdict.action,
                    operator: None,
                    held_tiers: &held_tiers,
                },
            )
            .await
            .context("recording a risk decision")?;
        }
        if verdict.cancel_credits && verdict.action.is_none() {
            let cancelled = db::risk::cancel_credits(tx, campaign, &inviter)
                .await
                .context("cancelling a blocked inviter's credits")?;
            screen.cancelled.extend(cancelled);
        }
    }
    Ok(screen)
}

/// The tiers the batch's credits took the inviter to (what is held instead of granted).
fn newly_reached(
    campaigns: &[CampaignRules],
    campaign: CampaignId,
    inviter: &OpenId,
    new_credits: i32,
    counts: &HashMap<(CampaignId, String), i32>,
) -> Vec<i64> {
    let Some(now) = counts.get(&(campaign, inviter.to_string())).copied() else {
        return Vec::new();
    };
    let before = now - new_credits;
    campaigns
        .iter()
        .filter(|c| c.id == campaign)
        .flat_map(|c| &c.tiers)
        .filter(|t| t.threshold > before && t.threshold <= now)
        .map(|t| t.id)
        .collect()
}

fn thresholds(row: &db::risk::Observed) -> Thresholds {
    Thresholds {
        policy: RiskPolicy::parse(&row.risk_policy).unwrap_or(RiskPolicy::Flag),
        per_minute: row.risk_per_minute,
        per_hour: row.risk_per_hour,
        left_percent: row.risk_left_percent,
        left_min_friends: row.risk_left_min_friends,
        block_per_minute: row.risk_block_per_minute,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::referral::rules::test_values::{campaign, id};
    use crate::referral::rules::TierRule;

    #[test]
    fn held_tiers_are_those_the_batch_crossed() {
        let mut rules = campaign();
        rules.tiers = [(1, 3), (2, 12), (3, 25)]
            .into_iter()
            .map(|(tier, threshold)| TierRule {
                id: tier,
                threshold,
                name: format!("tier {tier}"),
                uses_codes: false,
            })
            .collect();
        let inviter = id("oInviter0000000000000000000");
        let counts = HashMap::from([((rules.id, inviter.to_string()), 13)]);
        let campaigns = [rules.clone()];
        // From 10 to 13: tier 12 only (tier 3 was reached before, 25 not yet).
        assert_eq!(
            newly_reached(&campaigns, rules.id, &inviter, 3, &counts),
            [2]
        );
        assert!(newly_reached(&campaigns, rules.id, &inviter, 0, &counts).is_empty());
        assert!(newly_reached(&campaigns, CampaignId(99), &inviter, 3, &counts).is_empty());
    }
}
