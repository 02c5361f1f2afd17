//! WeChat callback cryptography: URL/push signatures and the AES "safe mode" message envelope.
//!
//! Everything here is pure computation over bytes and strings; no I/O. Input that arrives
//! from the network (signatures, ciphertexts) is never trusted: every malformed case maps to
//! a [`CryptoError`] and nothing on that path can panic.

use std::fmt;

use aes::Aes256;
use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::Engine;
use cbc::cipher::block_padding::NoPadding;
use cbc::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use rand::RngCore;
use sha1::{Digest, Sha1};
use subtle::ConstantTimeEq;

use super::message::push_cdata;

/// WeChat pads to 32-byte blocks (its reference PKCS7Encoder), not to the AES block size.
const PAD_BLOCK: usize = 32;
const AES_BLOCK: usize = 16;
const RANDOM_LEN: usize = 16;
const LEN_FIELD: usize = 4;
const HEADER_LEN: usize = RANDOM_LEN + LEN_FIELD;

/// EncodingAESKeys are 43 random alphanumerics, so the last character usually carries
/// non-zero trailing bits; a strict decoder would reject Tencent's own sample key.
const KEY_ENGINE: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_allow_trailing_bits(true),
);

/// The signature WeChat puts on a request: the parts (token, timestamp, nonce, and in safe mode
/// the ciphertext) sorted, concatenated and hashed with SHA-1, in lowercase hex.
pub fn signature(parts: &[&str]) -> String {
    hex::encode(signature_digest(parts))
}

/// Does `given` (hex, either case) sign `parts`? Compared in constant time, so an attacker
/// learns nothing from how long a wrong guess takes.
pub fn verify_signature(given: &str, parts: &[&str]) -> bool {
    // Comparing decoded digests makes the check case-insensitive without a data-dependent
    // lowercase pass; a wrong length or non-hex input simply fails.
    let mut given_digest = [0u8; 20];
    if hex::decode_to_slice(given, &mut given_digest).is_err() {
        return false;
    }
    let expected = signature_digest(parts);
    bool::from(given_digest.ct_eq(&expected))
}

fn signature_digest(parts: &[&str]) -> [u8; 20] {
    let mut sorted: Vec<&str> = parts.to_vec();
    sorted.sort_unstable();
    let mut hasher = Sha1::new();
    for part in sorted {
        hasher.update(part.as_bytes());
    }
    hasher.finalize().into()
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CryptoError {
    #[error("EncodingAESKey must be 43 characters of base64")]
    BadKey,
    #[error("ciphertext is not valid base64")]
    BadBase64,
    #[error("ciphertext length is not a multiple of the block size")]
    BadCiphertext,
    #[error("invalid PKCS#7 padding")]
    BadPadding,
    #[error("message length field is out of range")]
    BadLength,
    #[error("message was encrypted for another appid")]
    AppIdMismatch,
    #[error("message is not UTF-8")]
    BadUtf8,
}

/// The per-account secrets needed to open and seal safe-mode messages.
#[derive(Clone)]
pub struct MessageCrypto {
    key: [u8; 32],
    token: String,
    appid: String,
}

impl fmt::Debug for MessageCrypto {
    // The key and token are secrets: they must never reach a log line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MessageCrypto")
            .field("key", &"[redacted]")
            .field("token", &"[redacted]")
            .field("appid", &self.appid)
            .finish()
    }
}

impl MessageCrypto {
    pub fn new(encoding_aes_key: &str, token: &str, appid: &str) -> Result<Self, CryptoError> {
        if encoding_aes_key.len() != 43 {
            return Err(CryptoError::BadKey);
        }
        let mut padded = String::with_capacity(44);
        padded.push_str(encoding_aes_key);
        padded.push('=');
        let decoded = KEY_ENGINE
            .decode(padded.as_bytes())
            .map_err(|_| CryptoError::BadKey)?;
        let key: [u8; 32] = decoded.try_into().map_err(|_| CryptoError::BadKey)?;
        Ok(Self {
            key,
            token: token.to_owned(),
            appid: appid.to_owned(),
        })
    }

    /// Opens a safe-mode `Encrypt` value and returns the inner XML.
    pub fn decrypt(&self, encrypt_b64: &str) -> Result<String, CryptoError> {
        let plain = self.decrypt_raw(encrypt_b64)?;
        let body = unpad(&plain)?;

        let len_bytes: [u8; LEN_FIELD] = body
            .get(RANDOM_LEN..HEADER_LEN)
            .and_then(|b| b.try_into().ok())
            .ok_or(CryptoError::BadLength)?;
        let msg_len =
            usize::try_from(u32::from_be_bytes(len_bytes)).map_err(|_| CryptoError::BadLength)?;
        let msg_end = HEADER_LEN
            .checked_add(msg_len)
            .ok_or(CryptoError::BadLength)?;
        let msg = body
            .get(HEADER_LEN..msg_end)
            .ok_or(CryptoError::BadLength)?;
        let appid = body.get(msg_end..).ok_or(CryptoError::BadLength)?;

        if appid != self.appid.as_bytes() {
            return Err(CryptoError::AppIdMismatch);
        }
        String::from_utf8(msg.to_vec()).map_err(|_| CryptoError::BadUtf8)
    }

    pub fn encrypt(&self, xml: &str) -> String {
        let mut random = [0u8; RANDOM_LEN];
        rand::thread_rng().fill_bytes(&mut random);
        self.encrypt_with_random(xml, &random)
    }

    /// Deterministic form of [`encrypt`](Self::encrypt), for test vectors.
    pub fn encrypt_with_random(&self, xml: &str, random: &[u8; 16]) -> String {
        // Replies are our own few-hundred-byte XML; saturating only matters past 4 GiB, where
        // the receiver would reject the message instead of us panicking.
        let len = u32::try_from(xml.len()).unwrap_or(u32::MAX);

        let unpadded = HEADER_LEN + xml.len() + self.appid.len();
        let pad = PAD_BLOCK - unpadded % PAD_BLOCK;
        let mut plain = Vec::with_capacity(unpadded + pad);
        plain.extend_from_slice(random);
        plain.extend_from_slice(&len.to_be_bytes());
        plain.extend_from_slice(xml.as_bytes());
        plain.extend_from_slice(self.appid.as_bytes());
        // pad is in 1..=32, so it always fits in a byte.
        plain.resize(unpadded + pad, pad as u8);

        self.encrypt_raw(&plain)
    }

    pub fn msg_signature(&self, timestamp: &str, nonce: &str, encrypt: &str) -> String {
        signature(&[&self.token, timestamp, nonce, encrypt])
    }

    pub fn verify_msg_signature(
        &self,
        given: &str,
        timestamp: &str,
        nonce: &str,
        encrypt: &str,
    ) -> bool {
        verify_signature(given, &[&self.token, timestamp, nonce, encrypt])
    }

    /// <xml><Encrypt><![CDATA[..]]></Encrypt><MsgSignature><![CDATA[..]]></MsgSignature><TimeStamp>..</TimeStamp><Nonce><![CDATA[..]]></Nonce></xml>
    pub fn encrypted_reply(&self, reply_xml: &str, timestamp: &str, nonce: &str) -> String {
        let encrypt = self.encrypt(reply_xml);
        let signature = self.msg_signature(timestamp, nonce, &encrypt);
        let mut out = String::with_capacity(encrypt.len() + 200);
        out.push_str("<xml><Encrypt>");
        push_cdata(&mut out, &encrypt);
        out.push_str("</Encrypt><MsgSignature>");
        push_cdata(&mut out, &signature);
        out.push_str("</MsgSignature><TimeStamp>");
        // The timestamp and nonce come from the request's query string, so they are escaped
        // rather than trusted to be digits.
        out.push_str(&quick_xml::escape::escape(timestamp));
        out.push_str("</TimeStamp><Nonce>");
        push_cdata(&mut out, nonce);
        out.push_str("</Nonce></xml>");
        out
    }

    fn cipher_iv(&self) -> [u8; AES_BLOCK] {
        let mut iv = [0u8; AES_BLOCK];
        iv.copy_from_slice(&self.key[..AES_BLOCK]);
        iv
    }

    /// AES-256-CBC over already-padded plaintext.
    fn encrypt_raw(&self, plain: &[u8]) -> String {
        let cipher = cbc::Encryptor::<Aes256>::new(&self.key.into(), &self.cipher_iv().into());
        STANDARD.encode(cipher.encrypt_padded_vec_mut::<NoPadding>(plain))
    }

    /// Base64-decodes and AES-decrypts, leaving the padding for [`unpad`] to judge.
    fn decrypt_raw(&self, encrypt_b64: &str) -> Result<Vec<u8>, CryptoError> {
        let cipher_bytes = STANDARD
            .decode(encrypt_b64.as_bytes())
            .map_err(|_| CryptoError::BadBase64)?;
        if cipher_bytes.is_empty() || !cipher_bytes.len().is_multiple_of(AES_BLOCK) {
            return Err(CryptoError::BadCiphertext);
        }
        let cipher = cbc::Decryptor::<Aes256>::new(&self.key.into(), &self.cipher_iv().into());
        cipher
            .decrypt_padded_vec_mut::<NoPadding>(&cipher_bytes)
            .map_err(|_| CryptoError::BadCiphertext)
    }
}

/// Strips PKCS#7 padding to a 32-byte block. A sender following the protocol always produces
/// a multiple of 32 bytes, so anything else (e.g. a 16-byte padder) is rejected too.
fn unpad(plain: &[u8]) -> Result<&[u8], CryptoError> {
    if plain.is_empty() || !plain.len().is_multiple_of(PAD_BLOCK) {
        return Err(CryptoError::BadPadding);
    }
    let pad = plain.last().copied().map(usize::from).unwrap_or(0);
    if !(1..=PAD_BLOCK).contains(&pad) {
        return Err(CryptoError::BadPadding);
    }
    let split = plain.len() - pad;
    let (body, padding) = plain.split_at(split);
    if padding.iter().any(|&b| usize::from(b) != pad) {
        return Err(CryptoError::BadPadding);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    const KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
    const TOKEN: &str = "pamtest";
    const APPID: &str = "wxb11529c136998cb6";
    const TENCENT_CIPHERTEXT: &str =
        "jn1L23DB+6ELqJ+6bruv21Y6MD7KeIfP82D6gU39rmkgczbWwt5+3bnyg5K55bgVtVzd832WzZGMhkP72vVOfg==";

    fn crypto() -> MessageCrypto {
        MessageCrypto::new(KEY, TOKEN, APPID).expect("sample key is valid")
    }

    /// Seals `body` (random ‖ len ‖ xml ‖ appid) with caller-chosen padding bytes.
    fn seal_with_padding(c: &MessageCrypto, body: &[u8], padding: &[u8]) -> String {
        let mut plain = body.to_vec();
        plain.extend_from_slice(padding);
        c.encrypt_raw(&plain)
    }

    fn body(xml: &[u8], declared_len: u32, appid: &[u8]) -> Vec<u8> {
        let mut b = b"aaaabbbbccccdddd".to_vec();
        b.extend_from_slice(&declared_len.to_be_bytes());
        b.extend_from_slice(xml);
        b.extend_from_slice(appid);
        b
    }

    #[test]
    fn sha1_vector_and_order_independence() {
        let expected = "a9993e364706816aba3e25717850c26c9cd0d89d";
        assert_eq!(signature(&["a", "b", "c"]), expected);
        assert_eq!(signature(&["c", "a", "b"]), expected);
        assert_eq!(signature(&["b", "c", "a"]), expected);
        assert!(verify_signature(expected, &["c", "b", "a"]));
        assert!(verify_signature(&expected.to_uppercase(), &["a", "b", "c"]));
    }

    #[test]
    fn verify_signature_rejects_wrong_short_and_non_hex() {
        let good = signature(&["token", "1409304348", "xxxxxx"]);
        assert!(verify_signature(&good, &["token", "1409304348", "xxxxxx"]));
        assert!(!verify_signature(&good, &["token", "1409304348", "yyyyyy"]));
        assert!(!verify_signature(
            &good[..39],
            &["token", "1409304348", "xxxxxx"]
        ));
        assert!(!verify_signature("", &["token", "1409304348", "xxxxxx"]));
        assert!(!verify_signature(&"zz".repeat(20), &["token"]));
        assert!(!verify_signature("é", &["token"]));
    }

    #[test]
    fn tencent_vector_encrypts_exactly() {
        let c = crypto();
        assert_eq!(
            c.encrypt_with_random("我是中文abcd123", b"aaaabbbbccccdddd"),
            TENCENT_CIPHERTEXT
        );
    }

    #[test]
    fn tencent_vector_decrypts() {
        assert_eq!(
            crypto().decrypt(TENCENT_CIPHERTEXT),
            Ok("我是中文abcd123".to_owned())
        );
    }

    #[test]
    fn round_trip_every_length_exercises_every_pad_value() {
        let c = crypto();
        let mut pads_seen = BTreeSet::new();
        let mut xml = String::new();
        for len in 0..600 {
            assert_eq!(xml.len(), len);
            let sealed = c.encrypt(&xml);
            let raw = c.decrypt_raw(&sealed).expect("own ciphertext decrypts");
            assert_eq!(raw.len() % PAD_BLOCK, 0);
            pads_seen.insert(raw.last().copied().unwrap_or(0));
            assert_eq!(c.decrypt(&sealed).as_deref(), Ok(xml.as_str()));
            xml.push(char::from(b'a' + (len % 26) as u8));
        }
        assert_eq!(pads_seen, (1..=32).collect::<BTreeSet<u8>>());
    }

    #[test]
    fn random_prefix_differs_between_encryptions() {
        let c = crypto();
        assert_ne!(c.encrypt("<xml/>"), c.encrypt("<xml/>"));
    }

    #[test]
    fn wrong_appid_is_rejected() {
        let sender = MessageCrypto::new(KEY, TOKEN, "wx0000000000000000").expect("valid key");
        let sealed = sender.encrypt("<xml/>");
        assert_eq!(crypto().decrypt(&sealed), Err(CryptoError::AppIdMismatch));
    }

    #[test]
    fn wrong_key_is_rejected_without_panic() {
        let other = MessageCrypto::new("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopq", TOKEN, APPID)
            .expect("valid key");
        for len in 0..64 {
            let sealed = other.encrypt(&"x".repeat(len));
            assert!(crypto().decrypt(&sealed).is_err());
        }
        assert!(crypto().decrypt(TENCENT_CIPHERTEXT).is_ok());
        assert!(other.decrypt(TENCENT_CIPHERTEXT).is_err());
    }

    #[test]
    fn bad_keys_are_rejected() {
        assert_eq!(
            MessageCrypto::new("short", TOKEN, APPID).err(),
            Some(CryptoError::BadKey)
        );
        assert_eq!(
            MessageCrypto::new(&format!("{KEY}A"), TOKEN, APPID).err(),
            Some(CryptoError::BadKey)
        );
        assert_eq!(
            MessageCrypto::new(&format!("{}!", &KEY[..42]), TOKEN, APPID).err(),
            Some(CryptoError::BadKey)
        );
        // 43 bytes, but multi-byte characters must not confuse the length check.
        assert_eq!(
            MessageCrypto::new(&format!("{}é", &KEY[..41]), TOKEN, APPID).err(),
            Some(CryptoError::BadKey)
        );
    }

    #[test]
    fn garbage_short_and_tampered_ciphertexts_are_rejected() {
        let c = crypto();
        assert_eq!(c.decrypt("not base64!!"), Err(CryptoError::BadBase64));
        assert_eq!(c.decrypt("a"), Err(CryptoError::BadBase64));
        assert_eq!(c.decrypt(""), Err(CryptoError::BadCiphertext));
        assert_eq!(
            c.decrypt(&STANDARD.encode([0u8; 17])),
            Err(CryptoError::BadCiphertext)
        );
        assert!(c.decrypt(&STANDARD.encode([0u8; 16])).is_err());
        assert!(c.decrypt(&STANDARD.encode([7u8; 32])).is_err());
        assert!(c.decrypt(&TENCENT_CIPHERTEXT[..40]).is_err());

        let mut bytes = STANDARD
            .decode(TENCENT_CIPHERTEXT)
            .expect("vector is base64");
        for i in 0..bytes.len() {
            bytes[i] ^= 0x01;
            let tampered = STANDARD.encode(&bytes);
            assert_ne!(c.decrypt(&tampered), Ok("我是中文abcd123".to_owned()));
            bytes[i] ^= 0x01;
        }
    }

    #[test]
    fn arbitrary_plaintexts_and_ciphertexts_never_panic() {
        use rand::rngs::StdRng;
        use rand::{Rng, SeedableRng};
        let c = crypto();
        let mut rng = StdRng::seed_from_u64(11);
        for _ in 0..5000 {
            let blocks = rng.gen_range(0..5);
            let mut plain = vec![0u8; blocks * AES_BLOCK];
            rng.fill(&mut plain[..]);
            // Bias the last byte toward plausible pad values so later checks get exercised.
            if let Some(last) = plain.last_mut() {
                *last = rng.gen_range(0..40);
            }
            let _ = c.decrypt(&c.encrypt_raw(&plain));
            let mut raw = vec![0u8; rng.gen_range(0..80)];
            rng.fill(&mut raw[..]);
            let _ = c.decrypt(&STANDARD.encode(&raw));
        }
    }

    #[test]
    fn length_field_out_of_range_is_rejected() {
        let c = crypto();
        // 20 + 4 + 18 = 42 bytes, padded with 22 to 64.
        let oversized = body(b"abcd", 5, APPID.as_bytes());
        assert_eq!(
            c.decrypt(&seal_with_padding(&c, &oversized, &[22; 22])),
            Err(CryptoError::AppIdMismatch)
        );
        let huge = body(b"abcd", u32::MAX, APPID.as_bytes());
        assert_eq!(
            c.decrypt(&seal_with_padding(&c, &huge, &[22; 22])),
            Err(CryptoError::BadLength)
        );
        // Nothing but padding: too short to hold the random prefix and length field.
        assert_eq!(
            c.decrypt(&seal_with_padding(&c, &[], &[32; 32])),
            Err(CryptoError::BadLength)
        );
        assert_eq!(
            c.decrypt(&seal_with_padding(&c, &[0; 18], &[14; 14])),
            Err(CryptoError::BadLength)
        );
    }

    #[test]
    fn non_utf8_message_is_rejected() {
        let c = crypto();
        let b = body(&[0xff, 0xfe], 2, APPID.as_bytes());
        assert_eq!(b.len(), 40);
        assert_eq!(
            c.decrypt(&seal_with_padding(&c, &b, &[24; 24])),
            Err(CryptoError::BadUtf8)
        );
    }

    #[test]
    fn sixteen_byte_style_and_inconsistent_padding_is_rejected() {
        let c = crypto();
        // 40-byte body: a 16-byte padder adds 8 bytes of 8, giving 48 — not a 32-byte multiple.
        let b = body(b"ab", 2, APPID.as_bytes());
        assert_eq!(b.len(), 40);
        assert_eq!(
            c.decrypt(&seal_with_padding(&c, &b, &[8; 8])),
            Err(CryptoError::BadPadding)
        );
        // The correct 32-byte padding of the same body is accepted.
        assert_eq!(
            c.decrypt(&seal_with_padding(&c, &b, &[24; 24])),
            Ok("ab".to_owned())
        );
        // Pad value above 32.
        let mut bad = [24u8; 24];
        bad[23] = 33;
        assert_eq!(
            c.decrypt(&seal_with_padding(&c, &b, &bad)),
            Err(CryptoError::BadPadding)
        );
        // Pad value 0.
        bad[23] = 0;
        assert_eq!(
            c.decrypt(&seal_with_padding(&c, &b, &bad)),
            Err(CryptoError::BadPadding)
        );
        // Inconsistent pad bytes.
        let mut mixed = [24u8; 24];
        mixed[3] = 23;
        assert_eq!(
            c.decrypt(&seal_with_padding(&c, &b, &mixed)),
            Err(CryptoError::BadPadding)
        );
    }

    #[test]
    fn msg_signature_good_accepted_bad_rejected() {
        let c = crypto();
        let sig = c.msg_signature("1409304348", "xxxxxx", TENCENT_CIPHERTEXT);
        assert_eq!(
            sig,
            signature(&[TOKEN, "1409304348", "xxxxxx", TENCENT_CIPHERTEXT])
        );
        assert!(c.verify_msg_signature(&sig, "1409304348", "xxxxxx", TENCENT_CIPHERTEXT));
        assert!(c.verify_msg_signature(
            &sig.to_uppercase(),
            "1409304348",
            "xxxxxx",
            TENCENT_CIPHERTEXT
        ));
        assert!(!c.verify_msg_signature(&sig, "1409304349", "xxxxxx", TENCENT_CIPHERTEXT));
        assert!(!c.verify_msg_signature(&sig, "1409304348", "xxxxxy", TENCENT_CIPHERTEXT));
        assert!(!c.verify_msg_signature(&sig, "1409304348", "xxxxxx", "other"));
        let mut flipped = sig.clone().into_bytes();
        flipped[0] = if flipped[0] == b'0' { b'1' } else { b'0' };
        let flipped = String::from_utf8(flipped).expect("hex is ascii");
        assert!(!c.verify_msg_signature(&flipped, "1409304348", "xxxxxx", TENCENT_CIPHERTEXT));
        assert!(!c.verify_msg_signature("", "1409304348", "xxxxxx", TENCENT_CIPHERTEXT));
    }

    /// Pulls the text of `<tag>…</tag>` out of our own reply, undoing CDATA wrapping.
    fn field<'a>(xml: &'a str, tag: &str) -> &'a str {
        let open = format!("<{tag}>");
        let close = format!("</{tag}>");
        let start = xml.find(&open).expect("tag present") + open.len();
        let end = xml[start..].find(&close).expect("tag closed") + start;
        let inner = &xml[start..end];
        inner
            .strip_prefix("<![CDATA[")
            .and_then(|s| s.strip_suffix("]]>"))
            .unwrap_or(inner)
    }

    #[test]
    fn encrypted_reply_parses_back_and_verifies() {
        let c = crypto();
        let reply = "<xml><Content><![CDATA[hi]]></Content></xml>";
        let out = c.encrypted_reply(reply, "1409304348", "xxxxxx");
        assert!(out.starts_with("<xml><Encrypt><![CDATA["));
        assert!(out.ends_with("</Nonce></xml>"));
        let encrypt = field(&out, "Encrypt");
        let sig = field(&out, "MsgSignature");
        assert_eq!(field(&out, "TimeStamp"), "1409304348");
        assert_eq!(field(&out, "Nonce"), "xxxxxx");
        assert!(c.verify_msg_signature(sig, "1409304348", "xxxxxx", encrypt));
        assert_eq!(c.decrypt(encrypt).as_deref(), Ok(reply));
    }

    #[test]
    fn encrypted_reply_escapes_hostile_timestamp_and_nonce() {
        let out = crypto().encrypted_reply("<xml/>", "1<b>&", "n]]>x");
        assert!(out.contains("<TimeStamp>1&lt;b&gt;&amp;</TimeStamp>"));
        assert!(out.contains("<Nonce><![CDATA[n]]]]><![CDATA[>x]]></Nonce>"));
    }

    #[test]
    fn debug_redacts_secrets() {
        let shown = format!("{:?}", crypto());
        assert!(shown.contains(APPID));
        assert!(!shown.contains(TOKEN));
        assert!(!shown.contains("97, 98, 99"));
        assert!(shown.contains("redacted"));
    }
}
