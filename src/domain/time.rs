//! China time (UTC+8, no daylight saving): what followers and operators read, whatever the
//! server's clock zone. Timestamps are stored and compared in UTC.

use chrono::FixedOffset;

pub fn china() -> FixedOffset {
    FixedOffset::east_opt(8 * 3600).expect("UTC+8 is within a day of UTC")
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    #[test]
    fn midnight_utc_is_eight_in_the_morning_in_china() {
        let t = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        assert_eq!(
            t.with_timezone(&china()).format("%H:%M").to_string(),
            "08:00"
        );
    }
}
