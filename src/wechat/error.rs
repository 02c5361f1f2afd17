//! What can go wrong talking to WeChat, sorted by what the caller should do about it.

/// errcodes that mean the access_token itself is bad: drop it (if still current) and retry once.
pub const TOKEN_ERRCODES: [i64; 3] = [40001, 40014, 42001];

#[derive(Debug, thiserror::Error)]
pub enum WechatError {
    /// The account is misconfigured; retrying cannot help and someone must act.
    #[error("WeChat configuration error {errcode} ({hint}): {errmsg}")]
    Config {
        errcode: i64,
        errmsg: String,
        hint: &'static str,
    },
    /// WeChat answered with an error for this call.
    #[error("WeChat API error {errcode}: {errmsg}")]
    Api { errcode: i64, errmsg: String },
    /// Never holds the request's URL: its query carries the access_token or the AppSecret.
    #[error("could not reach WeChat")]
    Transport(#[source] reqwest::Error),
    #[error("unexpected answer from WeChat: {0}")]
    BadResponse(String),
    #[error("shared token store failed")]
    Store(#[source] anyhow::Error),
}

impl From<reqwest::Error> for WechatError {
    /// Drops the URL from the error, so neither its text nor its `Debug` output (both end up in
    /// logs) can show the credentials in the query string.
    fn from(e: reqwest::Error) -> Self {
        WechatError::Transport(e.without_url())
    }
}

impl WechatError {
    /// Turns an errcode into the right kind of error.
    pub fn from_code(errcode: i64, errmsg: String) -> WechatError {
        let hint = match errcode {
            40013 => Some("wrong WECHAT_APPID"),
            40125 => Some("wrong WECHAT_SECRET"),
            40164 => Some("this server's IP is not in the account's IP whitelist"),
            48001 => Some("the account is not authorised for this API"),
            _ => None,
        };
        match hint {
            Some(hint) => WechatError::Config {
                errcode,
                errmsg,
                hint,
            },
            None => WechatError::Api { errcode, errmsg },
        }
    }

    pub fn errcode(&self) -> Option<i64> {
        match self {
            WechatError::Config { errcode, .. } | WechatError::Api { errcode, .. } => {
                Some(*errcode)
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configuration_errors_name_their_cause() {
        for (code, hint) in [
            (40013, "APPID"),
            (40125, "SECRET"),
            (40164, "whitelist"),
            (48001, "authorised"),
        ] {
            let e = WechatError::from_code(code, "x".into());
            assert!(matches!(e, WechatError::Config { .. }), "{code}");
            assert!(e.to_string().contains(hint), "{e}");
        }
        assert!(matches!(
            WechatError::from_code(45009, "quota".into()),
            WechatError::Api { .. }
        ));
    }

    #[tokio::test]
    async fn transport_errors_do_not_carry_the_url() {
        // Nothing listens on port 9 here: the connection is refused.
        let e = reqwest::Client::new()
            .get("http://127.0.0.1:9/cgi-bin/token?secret=s3cr3t-value&access_token=t0k3n")
            .send()
            .await
            .unwrap_err();
        assert!(format!("{e}").contains("s3cr3t-value"), "reqwest shows it");
        let e = WechatError::from(e);
        let mut shown = format!("{e} {e:?}");
        shown.push_str(&format!("{:?}", anyhow::Error::new(e)));
        for secret in ["s3cr3t-value", "t0k3n"] {
            assert!(!shown.contains(secret), "{shown}");
        }
    }
}
