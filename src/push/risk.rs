//! Risk screening of a batch: after its credits and revocations are counted, the inviters they
//! concern — and the inviters of friends doing something for the first time since following —
//! have their counters updated in one statement, their signals read against their campaign's
//! policy (`referral::risk`, pure), and any decision recorded through `db::risk::decide`. Costs
//! nothing for a batch without credits, revocations or such first interactions, one statement
//! for one whose inviters fire nothing. Rows are taken after the leaderboard rows and before
//! the grants, the push path's global order.

use std::collections::{BTreeMap, HashMap, HashSet};

use anyhow::Context;
use chrono::{DateTime, Utc};

use super::plan::PlannedCredit;
use crate::db::{self, Tx};
use crate::domain::{CampaignId, OpenId, RiskPolicy, RiskStatus, Signal};
use crate::referral::risk::{self, Counters, Thresholds};
use crate::referral::rules::{CampaignRules, Follower};

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

/// What the batch adds to its inviters' risk counters (the counting statement adds it):
/// `lost` has one entry per credit revoked because the friend left within the window;
/// `interactions` the batch's followers whose first interaction since following it may hold
/// (`first_interactions`).
pub fn observation<'a>(
    credited: &[(&'a PlannedCredit, i64)],
    lost: &'a [(CampaignId, OpenId)],
    interactions: Vec<db::risk::Interaction<'a>>,
) -> db::risk::Observation<'a> {
    db::risk::Observation {
        credits: credited
            .iter()
            .map(|(c, _)| (c.campaign, &c.inviter, c.at))
            .collect(),
        lost: lost.iter().map(|(c, o)| (*c, o)).collect(),
        interactions,
        kept: risk::RECENT_KEPT,
    }
}

/// Screens the inviters the batch's `observed` counters concern (after its credits and
/// `lost` friends were counted); `counts` is each touched leaderboard row's count after the
/// batch.
pub async fn screen(
    tx: &mut Tx<'_>,
    campaigns: &[CampaignRules],
    credited: &[(&PlannedCredit, i64)],
    lost: &[(CampaignId, OpenId)],
    observed: Vec<db::risk::Observed>,
    counts: &HashMap<(CampaignId, String), i32>,
) -> anyhow::Result<Screen> {
    if observed.is_empty() {
        return Ok(Screen::default());
    }
    let mut added: BTreeMap<(i64, &OpenId), (i32, DateTime<Utc>)> = BTreeMap::new();
    for (c, _) in credited {
        let e = added.entry((c.campaign.0, &c.inviter)).or_insert((0, c.at));
        e.0 += 1;
        e.1 = e.1.max(c.at);
    }
    let lost_from: HashSet<(i64, &OpenId)> = lost.iter().map(|(c, o)| (c.0, o)).collect();
    let minutes = account_minutes(tx, &observed, &added).await?;

    let mut screen = Screen::default();
    let mut fired = Vec::new();
    let mut verdicts = Vec::new();
    for (row, account_minute) in observed.iter().zip(minutes) {
        let Ok(inviter) = OpenId::parse(&row.openid) else {
            continue;
        };
        let campaign = CampaignId(row.campaign_id);
        let (new_credits, latest) = added
            .get(&(row.campaign_id, &inviter))
            .copied()
            .map_or((0, None), |(n, at)| (n, Some(at)));
        if new_credits == 0 && !lost_from.contains(&(row.campaign_id, &inviter)) {
            // Only friends' first interactions: counted, and nothing they change can fire.
            continue;
        }
        let thresholds = thresholds(row);
        let counters = Counters {
            recent: row.recent.clone(),
            friends: row.friends,
            friends_left: row.friends_left,
            friends_active: row.friends_active,
            invited_at: row.invited_at,
            account_minute,
        };
        let signals = risk::signals(&counters, &thresholds, latest.unwrap_or_else(Utc::now));
        let current = RiskStatus::parse(&row.status).unwrap_or(RiskStatus::Ok);
        let verdict = risk::assess(current, row.cleared, &thresholds, &signals, new_credits > 0);
        if verdict.status.withholds() {
            screen.withheld.insert((campaign, inviter.clone()));
        }
        // Only what changes the inviter's recorded signals is written: a busy inviter fires
        // the same signals batch after batch.
        fired.extend(
            signals
                .into_iter()
                .filter(|s| news(&row.signals, s))
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

/// Whether `fired` would change the inviter's `recorded` signals (`db::risk::record_signals`
/// keeps the strongest value and follows the threshold): a signal not recorded yet, a stronger
/// value, or another threshold.
fn news(recorded: &[db::risk::Recorded], fired: &Signal) -> bool {
    !recorded
        .iter()
        .any(|r| r.name == fired.name && fired.value <= r.value && fired.threshold == r.threshold)
}

/// For each inviter observed: the whole account's follows in the minute ending at their latest
/// credit in the batch, when that minute holds enough of their credits to be a scene burst under
/// their campaign's policy — read in one statement for all of them, none when nobody bursts.
async fn account_minutes(
    tx: &mut Tx<'_>,
    observed: &[db::risk::Observed],
    added: &BTreeMap<(i64, &OpenId), (i32, DateTime<Utc>)>,
) -> anyhow::Result<Vec<Option<risk::AccountMinute>>> {
    let ends: Vec<Option<DateTime<Utc>>> = observed
        .iter()
        .map(|row| {
            let inviter = OpenId::parse(&row.openid).ok()?;
            let (_, end) = added.get(&(row.campaign_id, &inviter))?;
            risk::burst_window(&row.recent, &thresholds(row), *end).then_some(*end)
        })
        .collect();
    let spans: Vec<(i64, i64)> = ends
        .iter()
        .flatten()
        .map(|&e| risk::follow_buckets(e))
        .collect();
    let mut follows = db::risk::account_follows(tx, &spans)
        .await
        .context("counting the account's follows")?
        .into_iter();
    Ok(ends
        .into_iter()
        .map(|end| {
            let end = end?;
            Some(risk::AccountMinute {
                end,
                follows: follows.next()?,
            })
        })
        .collect())
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
        silent_percent: row.risk_silent_percent,
        burst_min: row.risk_burst_min,
        burst_percent: row.risk_burst_percent,
    }
}

/// The batch's followers who may have interacted for the first time since following: before
/// the batch nothing of theirs came after their latest follow (or they never did anything),
/// and the batch has something of theirs after it. Whether that is after a credit of theirs —
/// and for whom — the counting statement reads from the ledger.
pub fn first_interactions<'a>(
    before: &HashMap<OpenId, Follower>,
    after: impl IntoIterator<Item = (&'a OpenId, &'a Follower)>,
) -> Vec<db::risk::Interaction<'a>> {
    let mut found: Vec<_> = after
        .into_iter()
        .filter_map(|(openid, now)| {
            let latest = now.last_interaction_at?;
            if now.state_at.is_some_and(|s| latest <= s) {
                return None; // the follow itself (or an unfollow after it) is the latest
            }
            let was = before.get(openid);
            let earlier = was.and_then(|f| f.last_interaction_at);
            let quiet_since_follow = match (earlier, was.and_then(|f| f.state_at)) {
                (None, _) => true,
                (Some(e), Some(s)) => e <= s,
                (Some(_), None) => false,
            };
            (quiet_since_follow && earlier.is_none_or(|e| latest > e)).then_some(
                db::risk::Interaction {
                    openid,
                    before: earlier,
                    latest,
                },
            )
        })
        .collect();
    found.sort_by(|a, b| a.openid.cmp(b.openid));
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::referral::rules::test_values::{campaign, id};
    use crate::referral::rules::TierRule;

    #[test]
    fn a_first_interaction_after_following_is_found_and_nothing_else() {
        use crate::referral::rules::test_values::t;
        let follower = |last: Option<i64>, state: Option<i64>| Follower {
            subscribed: true,
            last_interaction_at: last.map(t),
            state_at: state.map(t),
            ..Follower::default()
        };
        let quiet = id("oQuiet00000000000000000000000");
        let talked = id("oTalked0000000000000000000000");
        let fresh = id("oFresh00000000000000000000000");
        let only_follow = id("oOnlyFollow000000000000000000");
        let before = HashMap::from([
            // Followed at 10 and nothing since.
            (quiet.clone(), follower(Some(10), Some(10))),
            // Followed at 10, wrote at 20: counted then already.
            (talked.clone(), follower(Some(20), Some(10))),
        ]);
        let after = [
            (quiet.clone(), follower(Some(30), Some(10))),
            (talked.clone(), follower(Some(40), Some(10))),
            // Followed and wrote within the batch.
            (fresh.clone(), follower(Some(50), Some(45))),
            // Only followed within the batch.
            (only_follow.clone(), follower(Some(60), Some(60))),
        ];
        let found: Vec<_> = first_interactions(&before, after.iter().map(|(o, f)| (o, f)))
            .into_iter()
            .map(|i| (i.openid, i.before, i.latest))
            .collect();
        assert_eq!(found, [(&fresh, None, t(50)), (&quiet, Some(t(10)), t(30))]);
    }

    #[test]
    fn a_signal_is_recorded_again_only_when_it_grew_or_its_threshold_moved() {
        use crate::referral::rules::test_values::t;
        let recorded = [db::risk::Recorded {
            name: risk::PER_MINUTE.to_string(),
            value: 12.0,
            threshold: 10.0,
        }];
        let fired = |name: &str, value: f64, threshold: f64| Signal {
            name: name.to_string(),
            value,
            threshold,
            at: t(100),
        };
        assert!(!news(&recorded, &fired(risk::PER_MINUTE, 12.0, 10.0)));
        assert!(!news(&recorded, &fired(risk::PER_MINUTE, 11.0, 10.0)));
        assert!(news(&recorded, &fired(risk::PER_MINUTE, 13.0, 10.0)));
        assert!(news(&recorded, &fired(risk::PER_MINUTE, 12.0, 8.0)));
        assert!(news(&recorded, &fired(risk::PER_HOUR, 12.0, 10.0)));
        assert!(news(&[], &fired(risk::PER_MINUTE, 12.0, 10.0)));
    }

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
