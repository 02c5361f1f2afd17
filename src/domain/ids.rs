//! Identifiers: a follower's openid and a campaign id.

use std::fmt;

use super::InvalidValue;

/// A follower's openid for this official account. WeChat issues 28 characters of
/// `[A-Za-z0-9_-]`; anything else (empty, spaces, markup) is refused at the edge.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, sqlx::Type)]
#[sqlx(transparent)]
#[serde(transparent)]
pub struct OpenId(String);

impl OpenId {
    pub fn parse(value: &str) -> Result<OpenId, InvalidValue> {
        let ok = (1..=64).contains(&value.len())
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if ok {
            Ok(OpenId(value.to_string()))
        } else {
            Err(InvalidValue(format!("{value:?} is not an openid")))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for OpenId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for OpenId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, sqlx::Type,
)]
#[sqlx(transparent)]
#[serde(transparent)]
pub struct CampaignId(pub i64);

impl fmt::Display for CampaignId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openids_are_checked() {
        assert!(OpenId::parse("oLVPpjqs9BhvzwPj5A-vTYAX3GLc").is_ok());
        for bad in ["", "has space", "<script>", &"a".repeat(65), "o'1"] {
            assert!(OpenId::parse(bad).is_err(), "{bad:?} accepted");
        }
    }
}
