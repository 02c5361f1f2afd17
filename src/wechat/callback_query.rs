//! The query string WeChat puts on every request to the callback URL: the signature over
//! Token, `timestamp` and `nonce`, the URL check's `echostr`, and in safe mode `encrypt_type`
//! and `msg_signature`. Everything in it comes from whoever sent the request.

use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
pub struct CallbackQuery {
    pub signature: Option<String>,
    pub timestamp: Option<String>,
    pub nonce: Option<String>,
    pub echostr: Option<String>,
    pub encrypt_type: Option<String>,
    pub msg_signature: Option<String>,
}

impl CallbackQuery {
    /// Parses a raw query string (what `web::Query` does for the handlers).
    pub fn parse(query: &str) -> Result<CallbackQuery, serde_urlencoded::de::Error> {
        serde_urlencoded::from_str(query)
    }

    /// The push is in safe (or compatible) mode's encrypted form.
    pub fn is_encrypted(&self) -> bool {
        self.encrypt_type.as_deref() == Some("aes")
    }

    /// `timestamp` is a whole number of seconds at most `max_skew` away from `now`. A missing
    /// or unreadable timestamp is not fresh: it is refused, never taken as some extreme value.
    pub fn timestamp_within(&self, now: i64, max_skew: u64) -> bool {
        self.timestamp
            .as_deref()
            .and_then(|t| t.parse::<i64>().ok())
            .and_then(|ts| ts.checked_sub(now))
            .is_some_and(|skew| skew.unsigned_abs() <= max_skew)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_fresh_only_when_readable_and_near() {
        let at = |ts: &str| CallbackQuery {
            timestamp: Some(ts.to_string()),
            ..CallbackQuery::default()
        };
        let now = 1_700_000_000;
        assert!(at("1700000000").timestamp_within(now, 300));
        assert!(at("1699999700").timestamp_within(now, 300));
        assert!(!at("1699999699").timestamp_within(now, 300));
        assert!(!at("1700000301").timestamp_within(now, 300));
        for unreadable in [
            "",
            "abc",
            "-9223372036854775808",
            "99999999999999999999",
            " 1700000000",
        ] {
            assert!(!at(unreadable).timestamp_within(now, 300), "{unreadable:?}");
        }
        assert!(!CallbackQuery::default().timestamp_within(now, 300));
    }

    #[test]
    fn parses_what_wechat_sends() {
        let q = CallbackQuery::parse(
            "signature=abc&timestamp=1700000000&nonce=n&openid=o&encrypt_type=aes&msg_signature=def",
        )
        .unwrap();
        assert!(q.is_encrypted());
        assert_eq!(q.msg_signature.as_deref(), Some("def"));
        assert!(CallbackQuery::parse("signature=a&signature=b").is_err());
    }
}
