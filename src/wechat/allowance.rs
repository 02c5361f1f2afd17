//! WeChat's customer-service message allowance (rules since 2023-06-12), per follower: after
//! the follower sends a message, 5 messages within 48 hours; after a follow, a QR scan or a
//! menu click, 3 messages within 1 minute. Allowances do not add up: a new action raises what
//! is left to that action's count (if higher) and moves the deadline to the later one. Past the
//! count WeChat answers 45047, past the deadline (or once the follower left) 45015. The
//! passive reply to a push does not count. Times are unix seconds.

/// What the follower did that opens an allowance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opener {
    /// A message of any type from the follower.
    Message,
    /// A follow, a QR-code scan or a menu click.
    Action,
}

impl Opener {
    /// Messages allowed, and for how many seconds.
    pub fn grants(self) -> (i32, i64) {
        match self {
            Opener::Message => (5, 48 * 3600),
            Opener::Action => (3, 60),
        }
    }
}

/// WeChat's answer to a customer-service message past the allowance's count.
pub const OUT_OF_COUNT: i64 = 45047;
/// ... past its deadline, or to a follower who left.
pub const OUT_OF_TIME: i64 = 45015;

/// What is left of a follower's allowance.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Allowance {
    pub left: i32,
    /// Messages are allowed until (excluding) this time.
    pub until: i64,
    /// The latest action that opened it: an older one, pushed late, changes nothing.
    pub opened_at: i64,
}

/// Why a message cannot be sent now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closed {
    OutOfCount,
    OutOfTime,
}

impl Closed {
    pub fn errcode(self) -> i64 {
        match self {
            Closed::OutOfCount => OUT_OF_COUNT,
            Closed::OutOfTime => OUT_OF_TIME,
        }
    }
}

impl Allowance {
    /// The allowance after the follower did `opener` at `at`.
    pub fn opened(self, opener: Opener, at: i64) -> Allowance {
        if at < self.opened_at {
            return self;
        }
        let (count, secs) = opener.grants();
        let left_now = if at < self.until { self.left } else { 0 };
        Allowance {
            left: left_now.max(count),
            until: self.until.max(at + secs),
            opened_at: at,
        }
    }

    /// Whether one more message may be sent at `now`.
    pub fn check(&self, now: i64) -> Result<(), Closed> {
        if now >= self.until {
            Err(Closed::OutOfTime)
        } else if self.left <= 0 {
            Err(Closed::OutOfCount)
        } else {
            Ok(())
        }
    }

    /// Spends one message (after `check` said yes).
    pub fn spend(&mut self) {
        self.left = (self.left - 1).max(0);
    }

    /// The follower left: nothing more until they act again.
    pub fn closed(self) -> Allowance {
        Allowance {
            left: 0,
            until: 0,
            ..self
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_opens_five_for_48_hours() {
        let mut a = Allowance::default().opened(Opener::Message, 1000);
        for _ in 0..5 {
            assert_eq!(a.check(1000 + 47 * 3600), Ok(()));
            a.spend();
        }
        assert_eq!(a.check(1001), Err(Closed::OutOfCount));
        let fresh = Allowance::default().opened(Opener::Message, 1000);
        assert_eq!(fresh.check(1000 + 48 * 3600), Err(Closed::OutOfTime));
        assert_eq!(Allowance::default().check(0), Err(Closed::OutOfTime));
    }

    #[test]
    fn a_follow_scan_or_click_opens_three_for_a_minute() {
        let mut a = Allowance::default().opened(Opener::Action, 0);
        assert_eq!(a.check(59), Ok(()));
        assert_eq!(a.check(60), Err(Closed::OutOfTime));
        for _ in 0..3 {
            a.spend();
        }
        assert_eq!(a.check(1), Err(Closed::OutOfCount));
    }

    #[test]
    fn allowances_do_not_add_up() {
        // Two messages left of a message's five; a click raises what is left to three and
        // keeps the later deadline (the message's).
        let mut a = Allowance::default().opened(Opener::Message, 0);
        for _ in 0..3 {
            a.spend();
        }
        let b = a.opened(Opener::Action, 100);
        assert_eq!((b.left, b.until), (3, 48 * 3600));
        // Four left: a click does not lower it.
        let mut c = Allowance::default().opened(Opener::Message, 0);
        c.spend();
        assert_eq!(c.opened(Opener::Action, 100).left, 4);
        // An expired allowance counts as nothing left.
        let d = Allowance::default()
            .opened(Opener::Action, 0)
            .opened(Opener::Action, 500);
        assert_eq!((d.left, d.until), (3, 560));
    }

    #[test]
    fn an_older_action_pushed_late_changes_nothing_and_leaving_closes() {
        let mut a = Allowance::default().opened(Opener::Message, 1000);
        for _ in 0..5 {
            a.spend();
        }
        assert_eq!(a.opened(Opener::Message, 900), a);
        let gone = a.opened(Opener::Action, 1100).closed();
        assert_eq!(gone.check(1101), Err(Closed::OutOfTime));
        assert_eq!(Closed::OutOfCount.errcode(), 45047);
        assert_eq!(Closed::OutOfTime.errcode(), 45015);
    }
}
