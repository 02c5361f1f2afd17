//! Deciding a batch, purely: given the pushes, what the database held once the followers' rows
//! were locked, the codes their scenes name and the campaigns, say what each push comes to and
//! what must be written. Pushes about one follower are decided in CreateTime order, each seeing
//! the follower as the ones before it left them — exactly as if they had come one by one.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};

use super::incoming::{Incoming, Kind};
use crate::domain::Outcome;
use crate::domain::{CampaignId, OpenId, Scene};
use crate::referral::risk;
use crate::referral::rules::{
    self, CampaignRules, Code, CodeOwner, Follower, Presence, SubscribeDecision,
};
use crate::wechat::allowance::Opener;

/// What the database held when the batch's rows were locked.
pub struct Known<'a> {
    /// Every follower the batch concerns, as they were before it.
    pub followers: &'a HashMap<OpenId, Follower>,
    /// Dedupe keys already recorded.
    pub recorded: &'a HashSet<String>,
    pub codes: &'a HashMap<Scene, Code>,
    pub campaigns: &'a [CampaignRules],
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedCredit {
    /// The push (index in the batch) that earns it.
    pub push: usize,
    pub campaign: CampaignId,
    pub invitee: OpenId,
    pub invitee_name: Option<String>,
    pub inviter: OpenId,
    pub inviter_name: Option<String>,
    /// The scene as pushed.
    pub scene: String,
    pub at: DateTime<Utc>,
    /// The invitee's unsubscribe, already applied because it was pushed first, falls inside
    /// the revoke window: the credit is revoked as soon as it is written.
    pub left_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Default)]
pub struct Plan {
    /// Per push, in the batch's order. `Credited` and `Unsubscribed` may still turn into
    /// `AlreadyCredited` and `Revoked` when the ledger answers.
    pub outcomes: Vec<Outcome>,
    /// Pushes to record (every one that is not a duplicate), by dedupe key.
    pub record: Vec<usize>,
    /// Followers whose row changes, with their state after the batch.
    pub followers: BTreeMap<OpenId, Follower>,
    /// Code id -> (scans, follows) to add.
    pub code_uses: BTreeMap<i64, (i64, i64)>,
    /// The account's follows (subscribes) by bucket start (unix seconds, per
    /// `risk::follow_bucket`): what the scene-burst signal compares a burst with.
    pub follows: BTreeMap<i64, i32>,
    pub credits: Vec<PlannedCredit>,
    /// Unsubscribes: credits inside their campaign's window are revoked.
    pub unsubscribes: Vec<usize>,
    /// Requests for the sender's poster.
    pub posters: Vec<usize>,
    /// Subscription notices accepted (true) or withdrawn (false): push, template id.
    pub subscriptions: Vec<(usize, String, bool)>,
}

pub fn plan(pushes: &[Incoming], known: Known<'_>) -> Plan {
    let mut plan = Plan {
        outcomes: vec![Outcome::Duplicate; pushes.len()],
        ..Plan::default()
    };
    // The first of several equal pushes is the one applied, whichever batch it came in.
    let mut seen = HashSet::new();
    let mut order: Vec<usize> = (0..pushes.len())
        .filter(|&i| {
            let key = pushes[i].dedupe_key.as_str();
            !known.recorded.contains(key) && seen.insert(key)
        })
        .collect();
    plan.record = order.clone();
    plan.record
        .sort_by(|&a, &b| pushes[a].dedupe_key.cmp(&pushes[b].dedupe_key));
    order.sort_by(|&a, &b| {
        (&pushes[a].openid, pushes[a].at, a).cmp(&(&pushes[b].openid, pushes[b].at, b))
    });

    let mut followers: HashMap<&OpenId, Follower> = HashMap::new();
    let mut credited: HashSet<(CampaignId, &OpenId)> = HashSet::new();
    for i in order {
        let push = &pushes[i];
        if !push.concerns_follower() {
            plan.outcomes[i] = Outcome::Recorded;
            continue;
        }
        let follower = followers.entry(&push.openid).or_insert_with(|| {
            known
                .followers
                .get(&push.openid)
                .cloned()
                .unwrap_or_default()
        });
        let before = follower.clone();
        plan.outcomes[i] = match &push.kind {
            Kind::Subscribe { scene } => {
                let bucket = risk::follow_bucket(push.at.timestamp());
                *plan.follows.entry(bucket).or_default() += 1;
                follower.see(push.at, FOLLOWING);
                follower.opened(Opener::Action, push.at);
                let Some(scene) = scene else {
                    plan.outcomes[i] = Outcome::Followed;
                    continue;
                };
                if scene.scene.as_ref().is_some_and(Scene::is_binding) {
                    plan.outcomes[i] = Outcome::BindingFollow;
                    continue;
                }
                let code = scene.scene.as_ref().and_then(|s| known.codes.get(s));
                if let Some(code) = code {
                    plan.code_uses.entry(code.id).or_default().1 += 1;
                }
                let campaign = rules::active_at(known.campaigns, push.at);
                match rules::decide_subscribe(&push.openid, &before, push.at, code, campaign) {
                    SubscribeDecision::Credit { inviter, campaign } => {
                        if credited.insert((campaign, &push.openid)) {
                            let window = known
                                .campaigns
                                .iter()
                                .find(|c| c.id == campaign)
                                .map_or(0, |c| c.revoke_window_days);
                            plan.credits.push(PlannedCredit {
                                push: i,
                                campaign,
                                invitee: push.openid.clone(),
                                invitee_name: before.nickname.clone(),
                                inviter,
                                inviter_name: code.and_then(owner_name),
                                scene: scene.raw.clone(),
                                at: push.at,
                                left_at: before.left_after(push.at).filter(|left| {
                                    rules::within_revoke_window(push.at, *left, window)
                                }),
                            });
                            Outcome::Credited
                        } else {
                            Outcome::AlreadyCredited
                        }
                    }
                    SubscribeDecision::Channel { .. } => Outcome::ChannelFollow,
                    SubscribeDecision::UnknownScene => Outcome::UnknownScene,
                    SubscribeDecision::SelfInvite => Outcome::SelfInvite,
                    SubscribeDecision::NotNew => Outcome::NotNew,
                    SubscribeDecision::NoCampaign => Outcome::NoCampaign,
                }
            }
            Kind::Scan { scene } => {
                // A SCAN is only pushed to followers: it is evidence of following at its time.
                follower.see(push.at, FOLLOWING);
                follower.opened(Opener::Action, push.at);
                if let Some(code) = scene.scene.as_ref().and_then(|s| known.codes.get(s)) {
                    plan.code_uses.entry(code.id).or_default().0 += 1;
                }
                Outcome::Scan
            }
            Kind::Unsubscribe => {
                follower.see(
                    push.at,
                    Presence {
                        following: false,
                        state: Some(false),
                    },
                );
                if follower.state_at == Some(push.at) {
                    follower.left(push.at);
                }
                plan.unsubscribes.push(i);
                Outcome::Unsubscribed
            }
            Kind::Interaction {
                opener,
                wants_poster,
            } => {
                follower.see(
                    push.at,
                    Presence {
                        following: true,
                        state: None,
                    },
                );
                follower.opened(*opener, push.at);
                if *wants_poster {
                    plan.posters.push(i);
                    Outcome::Poster
                } else {
                    Outcome::Interaction
                }
            }
            Kind::Subscriptions { accepted, rejected } => {
                for template in accepted {
                    plan.subscriptions.push((i, template.clone(), true));
                }
                for template in rejected {
                    plan.subscriptions.push((i, template.clone(), false));
                }
                Outcome::Subscriptions
            }
            Kind::Other => Outcome::Recorded,
        };
    }
    for (openid, after) in followers {
        if known.followers.get(openid) != Some(&after) {
            plan.followers.insert(openid.clone(), after);
        }
    }
    plan
}

const FOLLOWING: Presence = Presence {
    following: true,
    state: Some(true),
};

fn owner_name(code: &Code) -> Option<String> {
    match &code.owner {
        CodeOwner::Follower { nickname, .. } => nickname.clone(),
        CodeOwner::Channel(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::push::incoming::{EventFields, SceneKey};
    use crate::referral::rules::test_values::{campaign, id, t};

    fn push(openid: &str, at: i64, kind: Kind) -> Incoming {
        let event = match &kind {
            Kind::Subscribe { .. } => "subscribe",
            Kind::Scan { .. } => "SCAN",
            Kind::Unsubscribe => "unsubscribe",
            _ => "other",
        };
        Incoming {
            openid: id(openid),
            at: t(at),
            dedupe_key: format!("ev:{openid}:{at}:{event}"),
            kind,
            fields: EventFields {
                msg_type: "event".into(),
                event: Some(event.into()),
                event_key: None,
                ticket: None,
            },
        }
    }

    fn through(scene: i64) -> Kind {
        Kind::Subscribe {
            scene: Some(SceneKey {
                raw: scene.to_string(),
                scene: Some(Scene::Id(scene)),
            }),
        }
    }

    struct World {
        followers: HashMap<OpenId, Follower>,
        recorded: HashSet<String>,
        codes: HashMap<Scene, Code>,
        campaigns: Vec<CampaignRules>,
    }

    impl World {
        fn new() -> World {
            let mut codes = HashMap::new();
            codes.insert(
                Scene::Id(1),
                Code {
                    id: 11,
                    owner: CodeOwner::Follower {
                        openid: id("alice"),
                        nickname: Some("小明".into()),
                    },
                    expires_at: None,
                },
            );
            World {
                followers: HashMap::new(),
                recorded: HashSet::new(),
                codes,
                campaigns: vec![campaign()],
            }
        }

        fn plan(&self, pushes: &[Incoming]) -> Plan {
            plan(
                pushes,
                Known {
                    followers: &self.followers,
                    recorded: &self.recorded,
                    codes: &self.codes,
                    campaigns: &self.campaigns,
                },
            )
        }
    }

    #[test]
    fn duplicates_in_the_batch_or_already_recorded_change_nothing() {
        let mut world = World::new();
        let old = push("carol", 5, Kind::Unsubscribe);
        world.recorded.insert(old.dedupe_key.clone());
        let pushes = [
            push("bob", 10, through(1)),
            push("bob", 10, through(1)),
            old,
        ];
        let plan = world.plan(&pushes);
        assert_eq!(
            plan.outcomes,
            [Outcome::Credited, Outcome::Duplicate, Outcome::Duplicate]
        );
        assert_eq!(plan.record, [0]);
        assert_eq!(plan.credits.len(), 1);
        assert_eq!(plan.credits[0].inviter_name.as_deref(), Some("小明"));
        assert_eq!(plan.code_uses[&11], (0, 1));
        // The account's follows count the one recorded, not its duplicates.
        assert_eq!(plan.follows.values().sum::<i32>(), 1);
        assert!(plan.unsubscribes.is_empty());
    }

    #[test]
    fn one_followers_pushes_are_decided_in_create_time_order() {
        let world = World::new();
        // The SCAN of t=60 arrives first; the subscribe of t=10 still credits.
        let pushes = [
            push(
                "bob",
                60,
                Kind::Scan {
                    scene: SceneKey {
                        raw: "1".into(),
                        scene: Some(Scene::Id(1)),
                    },
                },
            ),
            push("bob", 10, through(1)),
            // A later follow through the code again is not new.
            push("bob", 90, through(1)),
        ];
        let plan = world.plan(&pushes);
        assert_eq!(
            plan.outcomes,
            [Outcome::Scan, Outcome::Credited, Outcome::NotNew]
        );
        assert_eq!(plan.credits[0].push, 1);
        assert_eq!(plan.code_uses[&11], (1, 2));
        // Two follows (the SCAN is none), each in its CreateTime's bucket.
        let bucket = |at: DateTime<Utc>| at.timestamp() - at.timestamp().rem_euclid(10);
        let mut expected = BTreeMap::new();
        for at in [t(10), t(90)] {
            *expected.entry(bucket(at)).or_insert(0) += 1;
        }
        assert_eq!(plan.follows, expected);
        let bob = &plan.followers[&id("bob")];
        assert_eq!(bob.followed_since, Some(t(10)));
        assert_eq!(bob.state_at, Some(t(90)));
    }

    #[test]
    fn a_follow_pushed_after_its_unsubscribe_is_credited_and_revoked_at_once() {
        let mut world = World::new();
        world.followers.insert(
            id("bob"),
            Follower {
                subscribed: false,
                state_at: Some(t(120)),
                ..Follower::default()
            },
        );
        let plan = world.plan(&[push("bob", 100, through(1))]);
        assert_eq!(plan.outcomes, [Outcome::Credited]);
        assert_eq!(plan.credits[0].left_at, Some(t(120)));
        // Outside the window the credit stands.
        world.followers.get_mut(&id("bob")).unwrap().state_at = Some(t(100 + 8 * 86_400));
        assert_eq!(
            world.plan(&[push("bob", 100, through(1))]).credits[0].left_at,
            None
        );
    }

    #[test]
    fn self_invites_imports_and_missing_campaigns_are_not_credited() {
        let mut world = World::new();
        world.followers.insert(
            id("dave"),
            Follower {
                imported: true,
                ..Follower::default()
            },
        );
        let plan = world.plan(&[
            push("alice", 10, through(1)),
            push("dave", 10, through(1)),
            push("erin", 10, through(2)),
            push("frank", 10, Kind::Subscribe { scene: None }),
        ]);
        assert_eq!(
            plan.outcomes,
            [
                Outcome::SelfInvite,
                Outcome::NotNew,
                Outcome::UnknownScene,
                Outcome::Followed
            ]
        );
        world.campaigns.clear();
        let plan = world.plan(&[push("bob", 10, through(1))]);
        assert_eq!(plan.outcomes, [Outcome::NoCampaign]);
        assert!(plan.credits.is_empty());
    }

    #[test]
    fn records_are_ordered_by_dedupe_key_and_unchanged_followers_are_not_written() {
        let mut world = World::new();
        let left = Follower {
            subscribed: false,
            state_at: Some(t(50)),
            ..Follower::default()
        };
        world.followers.insert(id("zed"), left);
        // An older unsubscribe than the one recorded changes nothing about zed.
        let plan = world.plan(&[
            push("zed", 20, Kind::Unsubscribe),
            push("amy", 1, Kind::Other),
        ]);
        assert_eq!(plan.record, [1, 0]);
        assert!(plan.followers.is_empty());
        assert_eq!(plan.outcomes, [Outcome::Unsubscribed, Outcome::Recorded]);
    }
}
