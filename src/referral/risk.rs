//! Risk signals and what a campaign's policy does about them, purely. The push path keeps
//! bounded counters per inviter (the times of their latest credits, how many friends they
//! brought, how many of those left within the revoke window and how many did anything after
//! following) and the account's follows per 10-second bucket; these functions read the counters
//! against the campaign's thresholds and say which signals fire and where the inviter stands
//! afterwards.

use chrono::{DateTime, Duration, Utc};

use crate::domain::{RiskAction, RiskPolicy, RiskStatus, Signal};

/// More credits than `per_minute` within 60 seconds.
pub const PER_MINUTE: &str = "credits_per_minute";
/// More credits than `per_hour` within an hour.
pub const PER_HOUR: &str = "credits_per_hour";
/// At least `left_percent` % of the inviter's friends left within the revoke window.
pub const FRIENDS_LEFT: &str = "friends_left_percent";
/// A chain: the inviter followed through someone's code at most `CHAIN_WITHIN` before a
/// per-minute burst of their own (a new friend at once inviting at the burst rate).
pub const CHAIN: &str = "chain_burst";
/// How soon after their own follow a burst makes a chain.
pub const CHAIN_WITHIN: Duration = Duration::hours(1);
/// More than `silent_percent` % of the inviter's friends older than a day never did anything
/// after following (no message, menu click or scan).
pub const FRIENDS_SILENT: &str = "friends_silent_percent";

/// A burst on one scene while the account is otherwise quiet: at least `burst_min` credits
/// through the inviter's code within 60 seconds, making at least `burst_percent` % of every
/// follow the whole account received in that minute.
pub const SCENE_BURST: &str = "scene_burst";
/// The account's follows are counted in buckets of this many seconds.
pub const FOLLOW_BUCKET_SECS: i64 = 10;

/// How many credit times the counters keep: more than any threshold a campaign may set (1..=100),
/// so a window over a threshold is always seen in full.
pub const RECENT_KEPT: usize = 128;

/// A campaign's policy and thresholds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thresholds {
    pub policy: RiskPolicy,
    pub per_minute: i32,
    pub per_hour: i32,
    pub left_percent: i32,
    /// The leaving share counts only from this many friends on.
    pub left_min_friends: i32,
    /// Under `block`: more credits than this within 60 seconds blocks.
    pub block_per_minute: i32,
    /// The silent share (of friends older than a day; from `left_min_friends` of them on);
    /// 0 = the signal is off.
    pub silent_percent: i32,
    /// The scene-burst signal's least credits within 60 s; 0 = the signal is off.
    pub burst_min: i32,
    /// … and the least share (%) of the account's follows in that minute they must make.
    pub burst_percent: i32,
}

impl Default for Thresholds {
    /// The default campaign's: flag only, more than 10 credits in 60 seconds.
    fn default() -> Thresholds {
        Thresholds {
            policy: RiskPolicy::Flag,
            per_minute: 10,
            per_hour: 60,
            left_percent: 50,
            left_min_friends: 10,
            block_per_minute: 20,
            // Off: most real followers never write to an account.
            silent_percent: 0,
            // Off: a follower sharing their code in a busy group chat on a quiet day looks
            // the same; a campaign whose farms come in small bursts turns it on.
            burst_min: 0,
            burst_percent: 80,
        }
    }
}

/// What the push path keeps about an inviter in a campaign.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    /// CreateTimes of the latest credits (at most `RECENT_KEPT`), any order.
    pub recent: Vec<DateTime<Utc>>,
    pub friends: i32,
    pub friends_left: i32,
    /// Friends who did something after following (counted once each, at their first time).
    pub friends_active: i32,
    /// When the inviter was themselves credited as someone's friend (the earliest), if ever.
    pub invited_at: Option<DateTime<Utc>>,
    /// The whole account's follows in the minute ending at the inviter's latest credit, when
    /// that minute holds enough of their credits to be a burst (`burst_window`).
    pub account_minute: Option<AccountMinute>,
}

/// How many follows the whole account received in the minute ending at `end` (counted in
/// whole buckets: `follow_buckets`, never fewer than there were).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccountMinute {
    pub end: DateTime<Utc>,
    pub follows: i64,
}

/// The inviter's credits within the 60 seconds ending at `end` (`end` included).
pub fn credits_within_minute(recent: &[DateTime<Utc>], end: DateTime<Utc>) -> usize {
    recent
        .iter()
        .filter(|&&at| at <= end && end - at < Duration::seconds(60))
        .count()
}

/// Whether the minute ending at the inviter's latest credit `end` is worth counting the
/// account's follows for: the signal is on and the inviter's credits in it (of the `recent`
/// credit times) reach its minimum.
pub fn burst_window(recent: &[DateTime<Utc>], t: &Thresholds, end: DateTime<Utc>) -> bool {
    t.burst_min > 0 && credits_within_minute(recent, end) >= t.burst_min as usize
}

/// The start (unix seconds) of the follow bucket holding the moment `secs`.
pub fn follow_bucket(secs: i64) -> i64 {
    secs.div_euclid(FOLLOW_BUCKET_SECS) * FOLLOW_BUCKET_SECS
}

/// The account's follow buckets (first and last start) that cover the minute ending at `end`:
/// every bucket that holds a moment of it, so the count is never short.
pub fn follow_buckets(end: DateTime<Utc>) -> (i64, i64) {
    (
        follow_bucket(end.timestamp() - 59),
        follow_bucket(end.timestamp()),
    )
}

/// The most credits inside any span shorter than `window`, and when that span ended.
pub fn peak(times: &[DateTime<Utc>], window: Duration) -> (usize, Option<DateTime<Utc>>) {
    let mut sorted = times.to_vec();
    sorted.sort_unstable();
    let mut best = (0, None);
    let mut start = 0;
    for end in 0..sorted.len() {
        while sorted[end] - sorted[start] >= window {
            start += 1;
        }
        let n = end - start + 1;
        if n > best.0 {
            best = (n, Some(sorted[end]));
        }
    }
    best
}

/// The signals the counters fire, each with its evidence. `now` dates the leaving share.
pub fn signals(c: &Counters, t: &Thresholds, now: DateTime<Utc>) -> Vec<Signal> {
    let mut fired = Vec::new();
    for (name, window, threshold) in [
        (PER_MINUTE, Duration::seconds(60), t.per_minute),
        (PER_HOUR, Duration::hours(1), t.per_hour),
    ] {
        if let (n, Some(at)) = peak(&c.recent, window) {
            if n as i64 > i64::from(threshold) {
                fired.push(Signal {
                    name: name.to_string(),
                    value: n as f64,
                    threshold: f64::from(threshold),
                    at,
                });
                let chained = c
                    .invited_at
                    .is_some_and(|joined| joined <= at && at - joined <= CHAIN_WITHIN);
                if name == PER_MINUTE && chained {
                    fired.push(Signal {
                        name: CHAIN.to_string(),
                        value: n as f64,
                        threshold: f64::from(threshold),
                        at,
                    });
                }
            }
        }
    }
    if c.friends >= t.left_min_friends && c.friends > 0 {
        let percent = f64::from(c.friends_left) * 100.0 / f64::from(c.friends);
        if percent >= f64::from(t.left_percent) {
            fired.push(Signal {
                name: FRIENDS_LEFT.to_string(),
                value: (percent * 10.0).round() / 10.0,
                threshold: f64::from(t.left_percent),
                at: now,
            });
        }
    }
    if let Some(old) = older_than_a_day(c, now) {
        if t.silent_percent > 0 && old >= t.left_min_friends && old > 0 {
            // Every active friend is taken for an old one: the share is never overstated.
            let silent = (old - c.friends_active).max(0);
            let percent = f64::from(silent) * 100.0 / f64::from(old);
            if percent > f64::from(t.silent_percent) {
                fired.push(Signal {
                    name: FRIENDS_SILENT.to_string(),
                    value: (percent * 10.0).round() / 10.0,
                    threshold: f64::from(t.silent_percent),
                    at: now,
                });
            }
        }
    }
    if let Some(minute) = c.account_minute {
        let n = credits_within_minute(&c.recent, minute.end);
        if t.burst_min > 0 && n >= t.burst_min as usize {
            // The inviter's credits are follows too: a count short of them (another
            // instance's batch not yet committed) is taken as theirs alone.
            let follows = minute.follows.max(n as i64);
            let percent = n as f64 * 100.0 / follows as f64;
            if percent >= f64::from(t.burst_percent) {
                fired.push(Signal {
                    name: SCENE_BURST.to_string(),
                    value: (percent * 10.0).round() / 10.0,
                    threshold: f64::from(t.burst_percent),
                    at: minute.end,
                });
            }
        }
    }
    fired
}

/// How many of the inviter's friends were credited more than a day before `now` (time enough
/// to do something after following); `None` when every credit time kept is within the day, so
/// the older ones cannot be told apart.
pub fn older_than_a_day(c: &Counters, now: DateTime<Utc>) -> Option<i32> {
    let young = c
        .recent
        .iter()
        .filter(|&&at| at > now - Duration::days(1))
        .count();
    if c.recent.len() >= RECENT_KEPT && young == c.recent.len() {
        return None;
    }
    Some((c.friends - young as i32).max(0))
}

/// Where an inviter stands after a batch, and what to do about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    pub status: RiskStatus,
    /// The automatic decision to record, if the status moved.
    pub action: Option<RiskAction>,
    /// Cancel the inviter's live credits (a block, or new credits of a blocked inviter).
    pub cancel_credits: bool,
}

/// What the policy makes of the signals fired for an inviter now standing at `current`.
/// Escalation only: nothing automatic ever lowers a status, and an inviter an operator cleared
/// is not escalated again by the signals they were cleared with.
pub fn assess(
    current: RiskStatus,
    cleared: bool,
    t: &Thresholds,
    fired: &[Signal],
    new_credits: bool,
) -> Verdict {
    let unchanged = Verdict {
        status: current,
        action: None,
        cancel_credits: current == RiskStatus::Blocked && new_credits,
    };
    if cleared || fired.is_empty() || current == RiskStatus::Blocked {
        return unchanged;
    }
    let over_hard = fired
        .iter()
        .any(|s| s.name == PER_MINUTE && s.value > f64::from(t.block_per_minute));
    let target = match t.policy {
        RiskPolicy::Flag => RiskAction::Flag,
        RiskPolicy::Hold => RiskAction::Hold,
        RiskPolicy::Block if over_hard => RiskAction::Block,
        RiskPolicy::Block => RiskAction::Hold,
    };
    if target.status() <= current {
        return unchanged;
    }
    Verdict {
        status: target.status(),
        action: Some(target),
        cancel_credits: target == RiskAction::Block,
    }
}

/// Whether an operator's decision applies to an inviter standing at `current`: approve what
/// was flagged or held, reject (withhold for good) what was flagged or held, block anyone not
/// blocked, unblock only the blocked.
pub fn allowed(current: RiskStatus, action: RiskAction) -> bool {
    match action {
        RiskAction::Approve | RiskAction::Reject => {
            matches!(current, RiskStatus::Flagged | RiskStatus::Held)
        }
        RiskAction::Block => current != RiskStatus::Blocked,
        RiskAction::Unblock => current == RiskStatus::Blocked,
        RiskAction::Flag | RiskAction::Hold => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_700_000_000 + secs, 0).unwrap()
    }

    fn counters(times: &[i64], friends: i32, left: i32) -> Counters {
        Counters {
            recent: times.iter().map(|&s| at(s)).collect(),
            friends,
            friends_left: left,
            // Everyone talks unless a test says otherwise.
            friends_active: friends,
            invited_at: None,
            account_minute: None,
        }
    }

    fn names(fired: &[Signal]) -> Vec<&str> {
        fired.iter().map(|s| s.name.as_str()).collect()
    }

    #[test]
    fn peak_counts_the_busiest_span_shorter_than_the_window_in_any_order() {
        let times: Vec<_> = [100, 0, 59, 30, 60, 61].iter().map(|&s| at(s)).collect();
        // 0, 30, 59 fit in 60 s; 30, 59, 60, 61 too (61 - 30 < 60); 0 and 60 do not.
        assert_eq!(peak(&times, Duration::seconds(60)), (4, Some(at(61))));
        assert_eq!(peak(&[], Duration::seconds(60)), (0, None));
    }

    #[test]
    fn eleven_credits_in_a_minute_fire_velocity_ten_do_not() {
        let t = Thresholds::default();
        let ten: Vec<i64> = (0..10).map(|i| i * 5).collect();
        assert!(signals(&counters(&ten, 10, 0), &t, at(0)).is_empty());
        let eleven: Vec<i64> = (0..11).map(|i| i * 5).collect();
        let fired = signals(&counters(&eleven, 11, 0), &t, at(0));
        assert_eq!(names(&fired), [PER_MINUTE]);
        assert_eq!((fired[0].value, fired[0].threshold), (11.0, 10.0));
        assert_eq!(fired[0].at, at(50));
    }

    #[test]
    fn a_steady_pace_never_fires_velocity_but_an_hourly_burst_does() {
        let t = Thresholds::default();
        let steady: Vec<i64> = (0..100).map(|i| i * 180).collect();
        assert!(signals(&counters(&steady, 100, 5), &t, at(0)).is_empty());
        let hourly: Vec<i64> = (0..61).map(|i| i * 55).collect();
        assert_eq!(
            names(&signals(&counters(&hourly, 61, 0), &t, at(0))),
            [PER_HOUR]
        );
    }

    #[test]
    fn the_leaving_share_counts_only_from_the_minimum_of_friends() {
        let t = Thresholds::default();
        assert!(signals(&counters(&[], 9, 9), &t, at(0)).is_empty());
        assert!(signals(&counters(&[], 10, 4), &t, at(0)).is_empty());
        let fired = signals(&counters(&[], 30, 18), &t, at(7));
        assert_eq!(names(&fired), [FRIENDS_LEFT]);
        assert_eq!(
            (fired[0].value, fired[0].threshold, fired[0].at),
            (60.0, 50.0, at(7))
        );
    }

    const DAY: i64 = 86_400;

    #[test]
    fn a_burst_within_an_hour_of_the_inviters_own_follow_is_a_chain() {
        let t = Thresholds::default();
        let burst: Vec<i64> = (0..11).map(|i| 1800 + i * 3).collect();
        let joined = |at_secs: Option<i64>| Counters {
            invited_at: at_secs.map(at),
            ..counters(&burst, 11, 0)
        };
        // Followed through a code 30 minutes before the burst ended.
        let fired = signals(&joined(Some(0)), &t, at(2000));
        assert_eq!(names(&fired), [PER_MINUTE, CHAIN]);
        assert_eq!((fired[1].value, fired[1].at), (11.0, at(1830)));
        // Followed two hours before, never invited by anyone, or after the burst: no chain.
        assert_eq!(
            names(&signals(&joined(Some(-5400)), &t, at(2000))),
            [PER_MINUTE]
        );
        assert_eq!(names(&signals(&joined(None), &t, at(2000))), [PER_MINUTE]);
        assert_eq!(
            names(&signals(&joined(Some(1900)), &t, at(2000))),
            [PER_MINUTE]
        );
        // A quick start below the burst rate is no chain either.
        let ten = Counters {
            invited_at: Some(at(0)),
            ..counters(&burst[..10], 10, 0)
        };
        assert!(signals(&ten, &t, at(2000)).is_empty());
    }

    #[test]
    fn silent_friends_fire_only_when_enough_are_old_and_almost_none_talk() {
        let off = Thresholds::default();
        let t = Thresholds {
            silent_percent: 90,
            ..off
        };
        let silent = |times: &[i64], friends: i32, active: i32| Counters {
            friends_active: active,
            ..counters(times, friends, 0)
        };
        // Twelve friends a few minutes apart, two days ago, none of them ever talking.
        let times: Vec<i64> = (0..12).map(|i| i * 300).collect();
        assert!(
            signals(&silent(&times, 12, 0), &off, at(2 * DAY)).is_empty(),
            "off by default"
        );
        let fired = signals(&silent(&times, 12, 0), &t, at(2 * DAY));
        assert_eq!(names(&fired), [FRIENDS_SILENT]);
        assert_eq!(
            (fired[0].value, fired[0].threshold, fired[0].at),
            (100.0, 90.0, at(2 * DAY))
        );
        // Within the day they had no time to talk: nothing fires.
        assert!(signals(&silent(&times, 12, 0), &t, at(3600)).is_empty());
        // Nine old friends are below the minimum of ten.
        assert!(signals(&silent(&times[..9], 9, 0), &t, at(2 * DAY)).is_empty());
        // Two of twelve talking is 83.3 % silent: below 90 %; one of twelve is 91.7 %.
        assert!(signals(&silent(&times, 12, 2), &t, at(2 * DAY)).is_empty());
        assert_eq!(
            signals(&silent(&times, 12, 1), &t, at(2 * DAY))[0].value,
            91.7
        );
        // Only the friends older than a day count: ten old and silent, five new and silent
        // too, two active (taken for old ones): 80 % — no signal.
        let mixed: Vec<i64> = (0..10)
            .map(|i| i * 60)
            .chain((0..5).map(|i| 2 * DAY + i))
            .collect();
        assert_eq!(
            older_than_a_day(&silent(&mixed, 15, 2), at(2 * DAY + 10)),
            Some(10)
        );
        assert!(signals(&silent(&mixed, 15, 2), &t, at(2 * DAY + 10)).is_empty());
    }

    #[test]
    fn old_friends_are_not_guessed_when_every_kept_credit_is_recent() {
        let recent: Vec<i64> = (0..RECENT_KEPT as i64).map(|i| DAY + i).collect();
        let c = counters(&recent, 500, 0);
        assert_eq!(older_than_a_day(&c, at(DAY + 200)), None);
        let some_old: Vec<i64> = (0..RECENT_KEPT as i64).map(|i| i * 1000).collect();
        let c = counters(&some_old, 500, 0);
        // 128 kept, the newest 88 (times above 39,600 s) within the day before 126,000 s.
        assert_eq!(older_than_a_day(&c, at(126_000)), Some(500 - 88));
    }

    #[test]
    fn a_burst_on_one_scene_fires_only_while_the_rest_of_the_account_is_quiet() {
        let off = Thresholds::default();
        let t = Thresholds {
            burst_min: 6,
            burst_percent: 80,
            ..off
        };
        // Eight friends within 40 s: below the velocity threshold of ten.
        let times: Vec<i64> = (0..8).map(|i| 100 + i * 5).collect();
        let end = at(135);
        let minute = |follows: i64| Counters {
            account_minute: Some(AccountMinute { end, follows }),
            ..counters(&times, 8, 0)
        };
        assert!(burst_window(&minute(8).recent, &t, end));
        assert!(
            !burst_window(&minute(8).recent, &off, end),
            "off by default"
        );
        assert!(signals(&minute(8), &off, end).is_empty());
        // The account got nothing else: 100 %.
        let fired = signals(&minute(8), &t, end);
        assert_eq!(names(&fired), [SCENE_BURST]);
        assert_eq!(
            (fired[0].value, fired[0].threshold, fired[0].at),
            (100.0, 80.0, end)
        );
        // Two other follows: 80 % still fires; three: 72.7 % does not.
        assert_eq!(signals(&minute(10), &t, end)[0].value, 80.0);
        assert!(signals(&minute(11), &t, end).is_empty());
        // A busy account: forty other follows that minute.
        assert!(signals(&minute(48), &t, end).is_empty());
        // A count short of the inviter's own credits is taken as theirs alone.
        assert_eq!(signals(&minute(3), &t, end)[0].value, 100.0);
        // Five in the minute are below the minimum, however quiet the account.
        let five = Counters {
            account_minute: Some(AccountMinute { end, follows: 5 }),
            ..counters(&times[..5], 5, 0)
        };
        assert!(!burst_window(&five.recent, &t, at(120)));
        assert!(signals(&five, &t, at(120)).is_empty());
    }

    #[test]
    fn the_minute_counts_credits_up_to_its_end_and_its_buckets_cover_it() {
        let times: Vec<DateTime<Utc>> =
            [0, 1, 30, 59, 60, 61, 200].iter().map(|&s| at(s)).collect();
        // (1, 61]: 30, 59, 60, 61 — 1 is exactly 60 s before and falls out; 200 is later.
        assert_eq!(credits_within_minute(&times, at(61)), 4);
        assert_eq!(credits_within_minute(&times, at(59)), 4);
        // Ending at …061: its seconds …002 to …061 lie in the buckets …000 to …060 (seven).
        assert_eq!(follow_buckets(at(61)), (1_700_000_000, 1_700_000_060));
        // Ending at …069: …010 to …069, six buckets exactly.
        assert_eq!(follow_buckets(at(69)), (1_700_000_010, 1_700_000_060));
    }

    fn velocity(n: f64) -> Vec<Signal> {
        vec![Signal {
            name: PER_MINUTE.into(),
            value: n,
            threshold: 10.0,
            at: at(0),
        }]
    }

    fn with(policy: RiskPolicy) -> Thresholds {
        Thresholds {
            policy,
            ..Thresholds::default()
        }
    }

    #[test]
    fn each_policy_escalates_as_it_says() {
        let flag = assess(
            RiskStatus::Ok,
            false,
            &with(RiskPolicy::Flag),
            &velocity(30.0),
            true,
        );
        assert_eq!(
            (flag.status, flag.action),
            (RiskStatus::Flagged, Some(RiskAction::Flag))
        );
        let hold = assess(
            RiskStatus::Ok,
            false,
            &with(RiskPolicy::Hold),
            &velocity(30.0),
            true,
        );
        assert_eq!(
            (hold.status, hold.action),
            (RiskStatus::Held, Some(RiskAction::Hold))
        );
        assert!(!hold.cancel_credits);
        let below = assess(
            RiskStatus::Ok,
            false,
            &with(RiskPolicy::Block),
            &velocity(15.0),
            true,
        );
        assert_eq!(below.status, RiskStatus::Held);
        let block = assess(
            RiskStatus::Held,
            false,
            &with(RiskPolicy::Block),
            &velocity(21.0),
            true,
        );
        assert_eq!(
            (block.status, block.action),
            (RiskStatus::Blocked, Some(RiskAction::Block))
        );
        assert!(block.cancel_credits);
    }

    #[test]
    fn nothing_automatic_lowers_a_status_or_escalates_a_cleared_inviter() {
        let t = with(RiskPolicy::Flag);
        let held = assess(RiskStatus::Held, false, &t, &velocity(30.0), true);
        assert_eq!((held.status, held.action), (RiskStatus::Held, None));
        let cleared = assess(
            RiskStatus::Ok,
            true,
            &with(RiskPolicy::Block),
            &velocity(50.0),
            true,
        );
        assert_eq!((cleared.status, cleared.action), (RiskStatus::Ok, None));
        let quiet = assess(RiskStatus::Ok, false, &t, &[], true);
        assert_eq!(quiet.action, None);
    }

    #[test]
    fn new_credits_of_a_blocked_inviter_are_cancelled_too() {
        let t = with(RiskPolicy::Block);
        assert!(assess(RiskStatus::Blocked, false, &t, &[], true).cancel_credits);
        assert!(!assess(RiskStatus::Blocked, false, &t, &[], false).cancel_credits);
    }

    #[test]
    fn operators_decide_only_what_fits_where_the_inviter_stands() {
        use RiskAction::*;
        use RiskStatus::{Blocked, Flagged, Held, Ok as Clear};
        assert!(allowed(Held, Approve) && allowed(Flagged, Approve) && !allowed(Clear, Approve));
        assert!(allowed(Held, Reject) && !allowed(Blocked, Reject));
        assert!(allowed(Clear, Block) && allowed(Held, Block) && !allowed(Blocked, Block));
        assert!(allowed(Blocked, Unblock) && !allowed(Held, Unblock));
        assert!(!allowed(Clear, Flag) && !allowed(Clear, Hold));
    }
}
