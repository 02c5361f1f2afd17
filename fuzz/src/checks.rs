//! What must hold for any input, whoever sends it. Shared by the fuzz targets and by the test
//! suite's short run (`tests/api/fuzz_seeds.rs`), which includes this file as it is.

use super::wechat::callback_query::CallbackQuery;
use super::wechat::crypto::MessageCrypto;
use super::wechat::message::{parse_encrypted_envelope, parse_push, push_xml, MAX_BODY_BYTES};

pub const AES_KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
pub const APPID: &str = "wx7e57fa55c0de0001";

/// The push parser never panics, refuses what is over the cap, and whatever it accepts
/// survives being written back out and read again unchanged.
pub fn push_xml_round_trips(data: &[u8]) {
    let Ok(push) = parse_push(data) else {
        return;
    };
    assert!(data.len() <= MAX_BODY_BYTES, "accepted an oversized body");
    let again = parse_push(push_xml(&push).as_bytes()).expect("our own XML parses");
    assert_eq!(again, push, "a push changed on the way out and back");
    // The envelope parser sees the same bodies in safe mode.
    let _ = parse_encrypted_envelope(data);
}

/// Decryption never panics on anything in `Encrypt`, and what we encrypt decrypts to itself.
pub fn decrypt_is_total(data: &[u8]) {
    let crypto = MessageCrypto::new(AES_KEY, "token", APPID).expect("test key");
    let text = String::from_utf8_lossy(data);
    let _ = crypto.decrypt(&text);
    // Raw bytes made base64 reach the block and padding checks rather than stopping at base64.
    let _ = crypto.decrypt(&base64_of(data));
    let xml = text.as_ref();
    let random: [u8; 16] = std::array::from_fn(|i| data.get(i).copied().unwrap_or(0));
    let sealed = crypto.encrypt_with_random(xml, &random);
    assert_eq!(crypto.decrypt(&sealed).as_deref(), Ok(xml), "round trip");
}

/// Any query string parses or is refused, and the freshness check never panics or overflows.
pub fn callback_query_is_total(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let Ok(query) = CallbackQuery::parse(&text) else {
        return;
    };
    let _ = query.is_encrypted();
    for now in [0, 1_700_000_000, i64::MIN, i64::MAX] {
        let fresh = query.timestamp_within(now, 300);
        if fresh {
            let ts: i64 = query
                .timestamp
                .as_deref()
                .and_then(|t| t.parse().ok())
                .expect("a fresh timestamp is a number");
            assert!((i128::from(ts) - i128::from(now)).abs() <= 300);
        }
    }
}

fn base64_of(data: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(data)
}
