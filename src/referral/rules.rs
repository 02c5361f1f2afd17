//! Pure decisions over domain values. No I/O and no table rows: everything a rule needs is
//! passed in as what it means (a follower's history, a code's owner, a campaign's terms), so
//! a rule changes when the product changes, not when a table does.

use chrono::{DateTime, Duration, Utc};

use crate::domain::{CampaignId, OpenId};
use crate::wechat::allowance::{Allowance, Opener};

/// What Fission knows of a follower's history, as far as the rules care.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Follower {
    pub nickname: Option<String>,
    pub subscribed: bool,
    /// The earliest evidence of following (a subscribe, a scan, a message).
    pub followed_since: Option<DateTime<Utc>>,
    /// When the latest subscribe/unsubscribe took effect (orders late pushes).
    pub state_at: Option<DateTime<Utc>>,
    /// Recorded as an existing follower by `import-followers`.
    pub imported: bool,
    pub last_interaction_at: Option<DateTime<Utc>>,
    /// How many customer-service messages WeChat would take now, as far as the pushes Fission
    /// saw and the messages it sent tell.
    pub allowance: Allowance,
}

/// What a push tells about a follower at the push's time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Presence {
    /// The follower was following then (subscribe, SCAN, a message, a menu click).
    pub following: bool,
    /// A subscribe (true) or unsubscribe (false): sets the state unless a later one already did.
    pub state: Option<bool>,
}

impl Follower {
    /// Applies what a push at `at` says (the same rule `db::users::apply` writes in SQL).
    pub fn see(&mut self, at: DateTime<Utc>, presence: Presence) {
        if presence.following {
            self.followed_since = Some(self.followed_since.map_or(at, |s| s.min(at)));
            self.last_interaction_at = Some(self.last_interaction_at.map_or(at, |s| s.max(at)));
        }
        if let Some(state) = presence.state {
            if self.state_at.is_none_or(|s| s <= at) {
                self.subscribed = state;
                self.state_at = Some(at);
            }
        }
    }

    /// The follower did something at `at` that opens a customer-service allowance.
    pub fn opened(&mut self, opener: Opener, at: DateTime<Utc>) {
        self.allowance = self.allowance.opened(opener, at.timestamp());
    }

    /// The follower left at `at`: no message reaches them until they act again (an
    /// unsubscribe older than the latest opening, pushed late, changes nothing).
    pub fn left(&mut self, at: DateTime<Utc>) {
        if at.timestamp() >= self.allowance.opened_at {
            self.allowance = self.allowance.closed();
        }
    }

    /// An unsubscribe later than `at` has already been applied (it was pushed first).
    pub fn left_after(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.state_at.filter(|s| !self.subscribed && *s > at)
    }
}

/// Who a parametric code belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeOwner {
    Follower {
        openid: OpenId,
        nickname: Option<String>,
    },
    /// An operator's channel code (a store, a printed poster).
    Channel(i64),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Code {
    pub id: i64,
    pub owner: CodeOwner,
    /// `None` for a permanent code.
    pub expires_at: Option<DateTime<Utc>>,
}

/// A reward tier of a campaign.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TierRule {
    pub id: i64,
    pub threshold: i32,
    pub name: String,
    pub uses_codes: bool,
}

/// A campaign's terms: when it runs, how it revokes, what it says, what it rewards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CampaignRules {
    pub id: CampaignId,
    pub is_default: bool,
    pub starts_at: DateTime<Utc>,
    pub ends_at: Option<DateTime<Utc>>,
    pub revoke_window_days: i32,
    pub revoke_rewards: bool,
    pub welcome_text: String,
    pub credit_text: String,
    pub reward_text: String,
    pub template_id: Option<String>,
    /// Days a reached tier waits before it is granted (0 = granted at once).
    pub reward_delay_days: i32,
    /// Ordered by threshold.
    pub tiers: Vec<TierRule>,
}

impl CampaignRules {
    pub fn runs_at(&self, at: DateTime<Utc>) -> bool {
        self.starts_at <= at && self.ends_at.is_none_or(|end| end > at)
    }
}

/// The campaign that decides a push at `at`: a configured campaign running then (the latest to
/// start wins), otherwise the always-on default campaign if it has not been ended.
pub fn active_at(campaigns: &[CampaignRules], at: DateTime<Utc>) -> Option<&CampaignRules> {
    campaigns
        .iter()
        .filter(|c| c.runs_at(at))
        .max_by_key(|c| (!c.is_default, c.starts_at, c.id.0))
}

/// What a subscribe through a code comes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubscribeDecision {
    /// Credit `inviter` in `campaign`.
    Credit {
        inviter: OpenId,
        campaign: CampaignId,
    },
    /// A follow through an operator's channel code.
    Channel {
        channel_id: i64,
    },
    /// The scene names no code Fission issued (or one that expired).
    UnknownScene,
    SelfInvite,
    /// The invitee followed before this event, or was imported as an existing follower.
    NotNew,
    NoCampaign,
}

/// Was this person a follower before `at`? Imported followers always were; otherwise any
/// evidence of following strictly earlier than this event counts. Evidence from a later push
/// that happened to arrive first (a SCAN overtaking a retried subscribe) does not.
pub fn followed_before(follower: &Follower, at: DateTime<Utc>) -> bool {
    follower.imported || follower.followed_since.is_some_and(|since| since < at)
}

/// Is the code usable for a push at `at`?
pub fn code_live(code: &Code, at: DateTime<Utc>) -> bool {
    code.expires_at.is_none_or(|exp| exp > at)
}

pub fn decide_subscribe(
    invitee: &OpenId,
    before: &Follower,
    at: DateTime<Utc>,
    code: Option<&Code>,
    campaign: Option<&CampaignRules>,
) -> SubscribeDecision {
    let Some(code) = code.filter(|c| code_live(c, at)) else {
        return SubscribeDecision::UnknownScene;
    };
    let inviter = match &code.owner {
        CodeOwner::Channel(channel_id) => {
            return SubscribeDecision::Channel {
                channel_id: *channel_id,
            }
        }
        CodeOwner::Follower { openid, .. } => openid,
    };
    if inviter == invitee {
        return SubscribeDecision::SelfInvite;
    }
    if followed_before(before, at) {
        return SubscribeDecision::NotNew;
    }
    match campaign {
        Some(c) => SubscribeDecision::Credit {
            inviter: inviter.clone(),
            campaign: c.id,
        },
        None => SubscribeDecision::NoCampaign,
    }
}

/// An unsubscribe at `left_at` revokes a credit made at `credited_at` when it falls inside the
/// campaign's window (0 days: never).
pub fn within_revoke_window(
    credited_at: DateTime<Utc>,
    left_at: DateTime<Utc>,
    window_days: i32,
) -> bool {
    window_days > 0
        && left_at >= credited_at
        && left_at <= credited_at + Duration::days(i64::from(window_days))
}

/// What becomes of a delayed tier once its date has come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DelayedTier {
    /// Granted now: the inviter's live count still reaches it.
    Grant,
    /// Granted meanwhile (an operator approved the inviter): only marked settled.
    AlreadyGranted,
    /// Too many friends left: not granted (reaching the tier again waits again).
    Lapse,
    /// The inviter's rewards are withheld (held or blocked): an operator decides, not the job.
    Wait,
}

/// Settles a due delayed tier from the inviter's live count (credits not revoked) and standing.
pub fn settle_delayed(
    invites: i32,
    threshold: i32,
    withheld: bool,
    already_granted: bool,
) -> DelayedTier {
    if already_granted {
        DelayedTier::AlreadyGranted
    } else if withheld {
        DelayedTier::Wait
    } else if invites >= threshold {
        DelayedTier::Grant
    } else {
        DelayedTier::Lapse
    }
}

/// The next tier above `count`, if any: (how many more invites, the tier's name).
pub fn next_tier<'a>(
    count: i32,
    tiers: impl IntoIterator<Item = (i32, &'a str)>,
) -> Option<(i32, &'a str)> {
    tiers
        .into_iter()
        .filter(|(threshold, _)| *threshold > count)
        .min_by_key(|(threshold, _)| *threshold)
        .map(|(threshold, name)| (threshold - count, name))
}

/// Values the rules' tests and the push planner's tests build on.
#[cfg(test)]
pub(crate) mod test_values {
    use super::*;
    use chrono::TimeZone;

    /// `secs` after a fixed instant.
    pub fn t(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_700_000_000 + secs, 0).unwrap()
    }

    pub fn id(s: &str) -> OpenId {
        OpenId::parse(s).unwrap()
    }

    /// A default campaign running from `t(0)`, no tiers, a 7-day window.
    pub fn campaign() -> CampaignRules {
        CampaignRules {
            id: CampaignId(7),
            is_default: true,
            starts_at: t(0),
            ends_at: None,
            revoke_window_days: 7,
            revoke_rewards: false,
            welcome_text: String::new(),
            credit_text: String::new(),
            reward_text: String::new(),
            template_id: None,
            reward_delay_days: 0,
            tiers: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_values::{campaign, id, t};
    use super::*;

    fn user(followed_since: Option<i64>, imported: bool) -> Follower {
        Follower {
            followed_since: followed_since.map(t),
            imported,
            ..Follower::default()
        }
    }

    fn code(owner: Option<&str>, channel: Option<i64>, expires: Option<i64>) -> Code {
        Code {
            id: 1,
            owner: match (owner, channel) {
                (Some(o), _) => CodeOwner::Follower {
                    openid: id(o),
                    nickname: None,
                },
                (None, Some(c)) => CodeOwner::Channel(c),
                (None, None) => unreachable!("a code has an owner"),
            },
            expires_at: expires.map(t),
        }
    }

    #[test]
    fn a_new_follower_through_a_code_credits_its_owner() {
        let d = decide_subscribe(
            &id("invitee"),
            &user(None, false),
            t(10),
            Some(&code(Some("alice"), None, None)),
            Some(&campaign()),
        );
        assert_eq!(
            d,
            SubscribeDecision::Credit {
                inviter: id("alice"),
                campaign: CampaignId(7)
            }
        );
    }

    #[test]
    fn later_evidence_does_not_cancel_a_credit_but_earlier_evidence_does() {
        let c = code(Some("alice"), None, None);
        let invitee = id("invitee");
        // A SCAN at t=20 arrived before the retried subscribe of t=10.
        let d = decide_subscribe(
            &invitee,
            &user(Some(20), false),
            t(10),
            Some(&c),
            Some(&campaign()),
        );
        assert!(matches!(d, SubscribeDecision::Credit { .. }));
        let d = decide_subscribe(
            &invitee,
            &user(Some(5), false),
            t(10),
            Some(&c),
            Some(&campaign()),
        );
        assert_eq!(d, SubscribeDecision::NotNew);
        let d = decide_subscribe(
            &invitee,
            &user(None, true),
            t(10),
            Some(&c),
            Some(&campaign()),
        );
        assert_eq!(d, SubscribeDecision::NotNew);
    }

    #[test]
    fn self_invites_unknown_scenes_channels_and_no_campaign() {
        let invitee = id("invitee");
        let fresh = user(None, false);
        let c = code(Some("invitee"), None, None);
        assert_eq!(
            decide_subscribe(&invitee, &fresh, t(1), Some(&c), Some(&campaign())),
            SubscribeDecision::SelfInvite
        );
        assert_eq!(
            decide_subscribe(&invitee, &fresh, t(1), None, Some(&campaign())),
            SubscribeDecision::UnknownScene
        );
        let expired = code(Some("alice"), None, Some(5));
        assert_eq!(
            decide_subscribe(&invitee, &fresh, t(6), Some(&expired), Some(&campaign())),
            SubscribeDecision::UnknownScene
        );
        let channel = code(None, Some(3), None);
        assert_eq!(
            decide_subscribe(&invitee, &fresh, t(1), Some(&channel), Some(&campaign())),
            SubscribeDecision::Channel { channel_id: 3 }
        );
        let c = code(Some("alice"), None, None);
        assert_eq!(
            decide_subscribe(&invitee, &fresh, t(1), Some(&c), None),
            SubscribeDecision::NoCampaign
        );
    }

    #[test]
    fn seeing_a_follower_keeps_the_earliest_follow_and_the_latest_state() {
        let mut f = Follower::default();
        let follow = Presence {
            following: true,
            state: Some(true),
        };
        let leave = Presence {
            following: false,
            state: Some(false),
        };
        f.see(t(10), follow);
        f.see(t(30), leave);
        // A subscribe of t=20 pushed after the unsubscribe of t=30: state stays "left".
        f.see(t(20), follow);
        assert_eq!(f.followed_since, Some(t(10)));
        assert!(!f.subscribed);
        assert_eq!(f.state_at, Some(t(30)));
        assert_eq!(f.left_after(t(20)), Some(t(30)));
        assert_eq!(f.left_after(t(40)), None);
        assert_eq!(f.last_interaction_at, Some(t(20)));
    }

    #[test]
    fn the_latest_configured_campaign_running_beats_the_default() {
        let default = campaign();
        let mut configured = campaign();
        configured.id = CampaignId(8);
        configured.is_default = false;
        configured.starts_at = t(100);
        configured.ends_at = Some(t(200));
        let all = [default, configured];
        assert_eq!(active_at(&all, t(50)).map(|c| c.id), Some(CampaignId(7)));
        assert_eq!(active_at(&all, t(150)).map(|c| c.id), Some(CampaignId(8)));
        assert_eq!(active_at(&all, t(200)).map(|c| c.id), Some(CampaignId(7)));
        assert_eq!(active_at(&all, t(-1)), None);
    }

    #[test]
    fn revoke_window_bounds() {
        assert!(within_revoke_window(t(0), t(86_400 * 7), 7));
        assert!(!within_revoke_window(t(0), t(86_400 * 7 + 1), 7));
        assert!(!within_revoke_window(t(0), t(10), 0));
        assert!(!within_revoke_window(t(10), t(0), 7));
    }

    #[test]
    fn next_tier_is_the_smallest_threshold_above_the_count() {
        let tiers = [(3, "mug"), (10, "bag"), (1, "sticker")];
        assert_eq!(next_tier(0, tiers), Some((1, "sticker")));
        assert_eq!(next_tier(3, tiers), Some((7, "bag")));
        assert_eq!(next_tier(10, tiers), None);
    }

    #[test]
    fn a_delayed_tier_is_granted_only_if_the_friends_stayed() {
        assert_eq!(settle_delayed(12, 12, false, false), DelayedTier::Grant);
        assert_eq!(settle_delayed(15, 12, false, false), DelayedTier::Grant);
        assert_eq!(settle_delayed(11, 12, false, false), DelayedTier::Lapse);
        assert_eq!(settle_delayed(0, 1, false, false), DelayedTier::Lapse);
        // Held or blocked inviters wait for an operator, whatever their count.
        assert_eq!(settle_delayed(30, 12, true, false), DelayedTier::Wait);
        assert_eq!(settle_delayed(3, 12, true, false), DelayedTier::Wait);
        // An approval granted it meanwhile: nothing more to grant.
        assert_eq!(
            settle_delayed(3, 12, false, true),
            DelayedTier::AlreadyGranted
        );
        assert_eq!(
            settle_delayed(30, 12, true, true),
            DelayedTier::AlreadyGranted
        );
    }
}
