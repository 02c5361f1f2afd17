//! Pure decisions. No I/O: everything they need is passed in, so every rule is unit-tested.

use chrono::{DateTime, Duration, Utc};

use crate::db::campaigns::Campaign;
use crate::db::codes::CodeRow;
use crate::db::users::UserRow;

/// What a subscribe through a code comes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubscribeDecision {
    /// Credit `inviter` in `campaign_id`.
    Credit {
        inviter: String,
        campaign_id: i64,
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

impl SubscribeDecision {
    /// The label recorded on the event and counted in metrics.
    pub fn outcome(&self) -> &'static str {
        match self {
            SubscribeDecision::Credit { .. } => "credited",
            SubscribeDecision::Channel { .. } => "channel_follow",
            SubscribeDecision::UnknownScene => "unknown_scene",
            SubscribeDecision::SelfInvite => "self_invite",
            SubscribeDecision::NotNew => "not_new",
            SubscribeDecision::NoCampaign => "no_campaign",
        }
    }
}

/// Was this person a follower before `at`? Imported followers always were; otherwise any
/// evidence of following strictly earlier than this event counts. Evidence from a later push
/// that happened to arrive first (a SCAN overtaking a retried subscribe) does not.
pub fn followed_before(user: &UserRow, at: DateTime<Utc>) -> bool {
    user.imported_at.is_some() || user.followed_since.is_some_and(|since| since < at)
}

/// Is the code usable for a push at `at`?
pub fn code_live(code: &CodeRow, at: DateTime<Utc>) -> bool {
    code.permanent || code.expires_at.is_some_and(|exp| exp > at)
}

pub fn decide_subscribe(
    invitee: &str,
    before: &UserRow,
    at: DateTime<Utc>,
    code: Option<&CodeRow>,
    campaign: Option<&Campaign>,
) -> SubscribeDecision {
    let Some(code) = code.filter(|c| code_live(c, at)) else {
        return SubscribeDecision::UnknownScene;
    };
    if let Some(channel_id) = code.channel_id {
        return SubscribeDecision::Channel { channel_id };
    }
    let Some(inviter) = code.owner_openid.as_deref() else {
        return SubscribeDecision::UnknownScene;
    };
    if inviter == invitee {
        return SubscribeDecision::SelfInvite;
    }
    if followed_before(before, at) {
        return SubscribeDecision::NotNew;
    }
    match campaign {
        Some(c) => SubscribeDecision::Credit {
            inviter: inviter.to_string(),
            campaign_id: c.id,
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

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_700_000_000 + secs, 0).unwrap()
    }

    fn user(followed_since: Option<i64>, imported: bool) -> UserRow {
        UserRow {
            openid: "invitee".into(),
            nickname: None,
            avatar_url: None,
            subscribed: false,
            followed_since: followed_since.map(t),
            state_at: None,
            imported_at: imported.then(|| t(0)),
            last_interaction_at: None,
            created_at: t(0),
        }
    }

    fn code(owner: Option<&str>, channel: Option<i64>, expires: Option<i64>) -> CodeRow {
        CodeRow {
            id: 1,
            owner_openid: owner.map(str::to_string),
            channel_id: channel,
            permanent: expires.is_none(),
            scene_id: Some(1),
            scene_str: None,
            ticket: "T".into(),
            url: "u".into(),
            expires_at: expires.map(t),
            image_key: None,
            scans: 0,
            follows: 0,
            created_at: t(0),
        }
    }

    fn campaign() -> Campaign {
        Campaign {
            id: 7,
            name: "c".into(),
            is_default: true,
            starts_at: t(0),
            ends_at: None,
            revoke_window_days: 7,
            revoke_rewards: false,
            welcome_text: String::new(),
            credit_text: String::new(),
            reward_text: String::new(),
            rules: String::new(),
            template_id: None,
        }
    }

    #[test]
    fn a_new_follower_through_a_code_credits_its_owner() {
        let d = decide_subscribe(
            "invitee",
            &user(None, false),
            t(10),
            Some(&code(Some("alice"), None, None)),
            Some(&campaign()),
        );
        assert_eq!(
            d,
            SubscribeDecision::Credit {
                inviter: "alice".into(),
                campaign_id: 7
            }
        );
    }

    #[test]
    fn later_evidence_does_not_cancel_a_credit_but_earlier_evidence_does() {
        let c = code(Some("alice"), None, None);
        // A SCAN at t=20 arrived before the retried subscribe of t=10.
        let d = decide_subscribe(
            "invitee",
            &user(Some(20), false),
            t(10),
            Some(&c),
            Some(&campaign()),
        );
        assert!(matches!(d, SubscribeDecision::Credit { .. }));
        let d = decide_subscribe(
            "invitee",
            &user(Some(5), false),
            t(10),
            Some(&c),
            Some(&campaign()),
        );
        assert_eq!(d, SubscribeDecision::NotNew);
        let d = decide_subscribe(
            "invitee",
            &user(None, true),
            t(10),
            Some(&c),
            Some(&campaign()),
        );
        assert_eq!(d, SubscribeDecision::NotNew);
    }

    #[test]
    fn self_invites_unknown_scenes_channels_and_no_campaign() {
        let c = code(Some("invitee"), None, None);
        assert_eq!(
            decide_subscribe(
                "invitee",
                &user(None, false),
                t(1),
                Some(&c),
                Some(&campaign())
            ),
            SubscribeDecision::SelfInvite
        );
        assert_eq!(
            decide_subscribe("invitee", &user(None, false), t(1), None, Some(&campaign())),
            SubscribeDecision::UnknownScene
        );
        let expired = code(Some("alice"), None, Some(5));
        assert_eq!(
            decide_subscribe(
                "invitee",
                &user(None, false),
                t(6),
                Some(&expired),
                Some(&campaign())
            ),
            SubscribeDecision::UnknownScene
        );
        let channel = code(None, Some(3), None);
        assert_eq!(
            decide_subscribe(
                "invitee",
                &user(None, false),
                t(1),
                Some(&channel),
                Some(&campaign())
            ),
            SubscribeDecision::Channel { channel_id: 3 }
        );
        let c = code(Some("alice"), None, None);
        assert_eq!(
            decide_subscribe("invitee", &user(None, false), t(1), Some(&c), None),
            SubscribeDecision::NoCampaign
        );
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
}
