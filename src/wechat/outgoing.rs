//! Builds a push exactly as WeChat sends it: query string with `signature` (and, in safe mode,
//! `encrypt_type=aes` and `msg_signature`) plus the XML body. Used by `fission simulate`, the
//! sandbox simulator and the tests.

use super::crypto::{signature, MessageCrypto};
use super::message::{push_xml, Push};

#[derive(Debug, Clone)]
pub struct SignedPush {
    pub query: Vec<(&'static str, String)>,
    pub body: String,
}

pub fn sign_push(
    token: &str,
    crypto: Option<&MessageCrypto>,
    push: &Push,
    timestamp: i64,
    nonce: &str,
) -> SignedPush {
    let ts = timestamp.to_string();
    let mut query = vec![
        ("signature", signature(&[token, &ts, nonce])),
        ("timestamp", ts.clone()),
        ("nonce", nonce.to_string()),
        ("openid", push.from_user.clone()),
    ];
    let xml = push_xml(push);
    let body = match crypto {
        Some(crypto) => {
            let encrypt = crypto.encrypt(&xml);
            query.push(("encrypt_type", "aes".to_string()));
            query.push(("msg_signature", crypto.msg_signature(&ts, nonce, &encrypt)));
            format!(
                "<xml><ToUserName><![CDATA[{}]]></ToUserName><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>",
                push.to_user
            )
        }
        None => xml,
    };
    SignedPush { query, body }
}

/// A fresh nonce, digits like WeChat's.
pub fn nonce() -> String {
    format!("{:010}", rand::random::<u32>())
}

/// An event push from `openid` at `create_time` (subscribe/SCAN/unsubscribe).
pub fn event(
    to_user: &str,
    openid: &str,
    create_time: i64,
    event: &str,
    event_key: Option<String>,
    ticket: Option<String>,
) -> Push {
    Push {
        to_user: to_user.to_string(),
        from_user: openid.to_string(),
        create_time,
        msg_type: "event".to_string(),
        event: Some(event.to_string()),
        event_key,
        ticket,
        content: None,
        msg_id: None,
        subscriptions: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wechat::crypto::verify_signature;
    use crate::wechat::message::{parse_encrypted_envelope, parse_push};

    #[test]
    fn plaintext_and_safe_mode_pushes_verify() {
        let push = event(
            "gh_x",
            "oUser",
            1_700_000_000,
            "subscribe",
            Some("qrscene_7".into()),
            Some("T".into()),
        );
        let plain = sign_push("tok", None, &push, 1_700_000_000, "123");
        assert!(verify_signature(
            &plain.query[0].1,
            &["tok", "1700000000", "123"]
        ));
        assert_eq!(parse_push(plain.body.as_bytes()).unwrap(), push);

        let crypto = MessageCrypto::new(
            "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
            "tok",
            "wxapp",
        )
        .unwrap();
        let safe = sign_push("tok", Some(&crypto), &push, 1_700_000_000, "123");
        let encrypt = parse_encrypted_envelope(safe.body.as_bytes()).unwrap();
        let msg_sig = &safe
            .query
            .iter()
            .find(|(k, _)| *k == "msg_signature")
            .unwrap()
            .1;
        assert!(crypto.verify_msg_signature(msg_sig, "1700000000", "123", &encrypt));
        assert_eq!(
            parse_push(crypto.decrypt(&encrypt).unwrap().as_bytes()).unwrap(),
            push
        );
    }
}
