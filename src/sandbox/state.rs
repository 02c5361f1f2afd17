//! The simulated WeChat world: tokens, tickets, users, inboxes, media and OAuth codes, plus the
//! simulated clock. Everything here is plain data behind the simulator's one `std::sync::Mutex`;
//! no method here does I/O, so the lock is never held across an `.await`.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use actix_web::{HttpResponse, ResponseError};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use rand::{Rng, RngCore};
use serde::Serialize;
use serde_json::{json, Value};

use crate::wechat::allowance::{Allowance, Opener};

/// Lifetime of an access_token (global or OAuth user token), as WeChat reports it.
pub(crate) const TOKEN_TTL: i64 = 7200;
/// How long a superseded token keeps working, and how early stable_token rolls over.
pub(crate) const TOKEN_GRACE: i64 = 300;
/// OAuth codes live five minutes.
pub(crate) const CODE_TTL: i64 = 300;
/// Uploaded temporary media live three days.
pub(crate) const MEDIA_TTL: i64 = 3 * 24 * 3600;

/// A WeChat API error: always HTTP 200 with `{"errcode","errmsg"}`, like WeChat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WxError {
    pub errcode: i64,
    pub errmsg: String,
}

impl WxError {
    /// An error with WeChat's usual message for that code. A request id is appended the way
    /// WeChat does, so clients that match on `errmsg` text instead of `errcode` break here too.
    pub fn new(errcode: i64) -> Self {
        let rid = format!(
            "{:08x}-{:08x}-{:08x}",
            rand::thread_rng().gen::<u32>(),
            rand::thread_rng().gen::<u32>(),
            rand::thread_rng().gen::<u32>()
        );
        Self {
            errcode,
            errmsg: format!("{} rid: {rid}", errmsg_for(errcode)),
        }
    }
}

impl fmt::Display for WxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "errcode {}: {}", self.errcode, self.errmsg)
    }
}

impl ResponseError for WxError {
    fn status_code(&self) -> actix_web::http::StatusCode {
        actix_web::http::StatusCode::OK
    }
    fn error_response(&self) -> HttpResponse {
        HttpResponse::Ok().json(json!({ "errcode": self.errcode, "errmsg": self.errmsg }))
    }
}

fn errmsg_for(errcode: i64) -> &'static str {
    match errcode {
        -1 => "system error",
        40001 => "invalid credential, access_token is invalid or not latest",
        40002 => "invalid grant_type",
        40003 => "invalid openid",
        40004 => "invalid media type",
        40005 => "invalid file type",
        40007 => "invalid media_id",
        40008 => "invalid message type",
        40009 => "invalid image size",
        40013 => "invalid appid",
        40029 => "invalid code",
        40037 => "invalid template_id",
        40053 => "invalid action info",
        40125 => "invalid appsecret",
        40163 => "code been used",
        41001 => "access_token missing",
        41005 => "media data missing",
        41008 => "missing code",
        41009 => "missing openid",
        42001 => "access_token expired",
        43001 => "require GET method",
        43002 => "require POST method",
        43004 => "require subscribe",
        43101 => "user refuse to accept the msg",
        44004 => "empty content",
        45009 => "reach max api daily quota limit",
        45011 => "api minute-quota reach limit  mustslower  retry next minute",
        45015 => "response out of time limit or subscription is canceled",
        40097 => "invalid args",
        45029 => "qrcode count out of limit",
        45047 => "out of response count limit",
        47001 => "data format error",
        47003 => "argument invalid!",
        48001 => "api unauthorized",
        _ => "simulated error",
    }
}

/// A simulated WeChat user (identified by the openid this account sees).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SimUser {
    pub openid: String,
    pub nickname: String,
    pub following: bool,
    /// Simulated unix time of the current follow, when following.
    pub subscribe_time: Option<i64>,
    /// `ADD_SCENE_QR_CODE` when the current follow came through a ticket, else `ADD_SCENE_OTHERS`.
    pub subscribe_scene: String,
    /// Scene of the ticket of the current follow: `qr_scene` for numeric, `qr_scene_str` for string scenes.
    pub qr_scene: i64,
    pub qr_scene_str: String,
    /// Last follow, scan, click or message (simulated clock).
    pub last_interaction: Option<i64>,
    pub created_at: i64,
    /// Customer-service messages WeChat still takes from the account (rules since 2023-06-12).
    #[serde(skip)]
    pub allowance: Allowance,
    /// Subscription templates accepted and not used yet: template id → how many notices.
    pub accepted: BTreeMap<String, u32>,
}

impl SimUser {
    /// The user did something that opens a customer-service allowance, at simulated time `at`.
    pub fn act(&mut self, opener: Opener, at: i64) {
        self.last_interaction = Some(self.last_interaction.map_or(at, |l| l.max(at)));
        self.allowance = self.allowance.opened(opener, at);
    }
}

/// How a message reached the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Via {
    /// `message/custom/send`
    Custom,
    /// `message/template/send`
    Template,
    /// `message/subscribe/bizsend`
    Subscription,
    /// The XML the callback answered to a push.
    PassiveReply,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "msgtype", rename_all = "snake_case")]
pub enum InboxBody {
    Text {
        content: String,
    },
    Image {
        media_id: String,
    },
    Template {
        template_id: String,
        url: Option<String>,
        data: Value,
        msgid: i64,
    },
    /// A passive reply of another MsgType (news, music …), kept as received.
    Other {
        msg_type: String,
        xml: String,
    },
}

/// One message the service sent to a user.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InboxMessage {
    /// Simulated unix time it was received.
    pub at: i64,
    pub via: Via,
    pub body: InboxBody,
}

pub(crate) struct IssuedToken {
    pub expires_at: i64,
    /// Set when a newer token replaced this one; it then works `TOKEN_GRACE` seconds more.
    pub superseded_at: Option<i64>,
    pub invalidated: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Scene {
    Id(i64),
    Str(String),
}

impl fmt::Display for Scene {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scene::Id(id) => write!(f, "{id}"),
            Scene::Str(s) => f.write_str(s),
        }
    }
}

pub(crate) struct Ticket {
    pub scene: Scene,
    pub permanent: bool,
    pub expires_at: Option<i64>,
    pub url: String,
}

pub(crate) struct Media {
    pub bytes: Vec<u8>,
    pub content_type: &'static str,
    pub created_at: i64,
}

pub(crate) struct OAuthCode {
    pub openid: String,
    pub scope: String,
    pub issued_at: i64,
    pub used: bool,
}

pub(crate) struct UserToken {
    pub openid: String,
    pub scope: String,
    pub expires_at: i64,
}

#[derive(Default)]
pub(crate) struct State {
    /// Where pushes go (set at start, or later by a test that knows the service's port).
    pub callback_url: Option<String>,
    pub clock_offset: i64,
    pub calls: HashMap<String, usize>,
    /// api → (errcode, remaining times)
    pub faults: HashMap<String, (i64, usize)>,
    /// How long every API call takes to be answered (a slow WeChat).
    pub latency: std::time::Duration,
    pub tokens: HashMap<String, IssuedToken>,
    /// Latest token from `/cgi-bin/token`; `stable_token` keeps its own, as WeChat isolates them.
    pub latest_token: Option<String>,
    pub stable_token: Option<String>,
    /// Simulated times of `force_refresh=true` calls, for the 20-a-day / 30 s-apart limits.
    pub force_refreshes: Vec<i64>,
    pub tickets: HashMap<String, Ticket>,
    pub permanent_tickets: HashMap<Scene, String>,
    pub permanent_quota: u32,
    pub qrcode_requests: Vec<Value>,
    /// Keyed by openid; the BTreeMap order is the stable order `user/get` pages through.
    pub users: BTreeMap<String, SimUser>,
    /// Creation order, for people looking at the pages.
    pub user_order: Vec<String>,
    pub inbox: HashMap<String, Vec<InboxMessage>>,
    pub media: HashMap<String, Media>,
    pub codes: HashMap<String, OAuthCode>,
    pub user_tokens: HashMap<String, UserToken>,
    /// Every jsapi_ticket issued, oldest first.
    pub jsapi_tickets: Vec<String>,
    /// Messages refused for a user (past the allowance, not subscribed …), for the inbox page.
    pub refused: HashMap<String, Vec<Refused>>,
}

/// A message WeChat refused to deliver to a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub at: i64,
    pub via: Via,
    pub errcode: i64,
}

impl State {
    pub fn now(&self) -> i64 {
        chrono::Utc::now().timestamp() + self.clock_offset
    }

    pub fn count(&mut self, api: &str) {
        *self.calls.entry(api.to_owned()).or_default() += 1;
    }

    /// Consumes one injected fault for `api`, if any is pending.
    pub fn take_fault(&mut self, api: &str) -> Result<(), WxError> {
        let Some((errcode, remaining)) = self.faults.get_mut(api) else {
            return Ok(());
        };
        let errcode = *errcode;
        *remaining -= 1;
        if *remaining == 0 {
            self.faults.remove(api);
        }
        Err(WxError::new(errcode))
    }

    /// Checks a global access_token the way every `/cgi-bin` API does.
    pub fn check_token(&self, token: Option<&str>) -> Result<(), WxError> {
        let token = token.filter(|t| !t.is_empty()).ok_or(WxError::new(41001))?;
        let issued = self.tokens.get(token).ok_or(WxError::new(40001))?;
        let now = self.now();
        if issued.invalidated
            || issued
                .superseded_at
                .is_some_and(|at| now >= at + TOKEN_GRACE)
        {
            return Err(WxError::new(40001));
        }
        if now >= issued.expires_at {
            return Err(WxError::new(42001));
        }
        Ok(())
    }

    pub fn issue_token(&mut self) -> String {
        let token = random_token();
        let expires_at = self.now() + TOKEN_TTL;
        self.tokens.insert(
            token.clone(),
            IssuedToken {
                expires_at,
                superseded_at: None,
                invalidated: false,
            },
        );
        token
    }

    /// Seconds the token has left, or None when it no longer works.
    pub fn token_remaining(&self, token: &str) -> Option<i64> {
        self.check_token(Some(token)).ok()?;
        let issued = self.tokens.get(token)?;
        let mut end = issued.expires_at;
        if let Some(at) = issued.superseded_at {
            end = end.min(at + TOKEN_GRACE);
        }
        Some(end - self.now())
    }

    pub fn ensure_user(&mut self, openid: &str, nickname: &str) -> &mut SimUser {
        let now = self.now();
        if !self.users.contains_key(openid) {
            self.user_order.push(openid.to_owned());
        }
        self.users
            .entry(openid.to_owned())
            .or_insert_with(|| SimUser {
                openid: openid.to_owned(),
                nickname: nickname.to_owned(),
                following: false,
                subscribe_time: None,
                subscribe_scene: String::new(),
                qr_scene: 0,
                qr_scene_str: String::new(),
                last_interaction: None,
                created_at: now,
                allowance: Allowance::default(),
                accepted: BTreeMap::new(),
            })
    }

    /// The ticket, if it exists and has not expired.
    pub fn live_ticket(&self, ticket: &str) -> Option<&Ticket> {
        let now = self.now();
        self.tickets
            .get(ticket)
            .filter(|t| t.expires_at.is_none_or(|at| now < at))
    }

    /// The media, if it exists and has not expired.
    pub fn live_media(&self, media_id: &str) -> Option<&Media> {
        let now = self.now();
        self.media
            .get(media_id)
            .filter(|m| now < m.created_at + MEDIA_TTL)
    }

    /// Notes that a message for a known user was refused, and returns the error to answer.
    pub fn refuse(&mut self, openid: &str, via: Via, errcode: i64) -> WxError {
        let at = self.now();
        if self.users.contains_key(openid) {
            self.refused
                .entry(openid.to_owned())
                .or_default()
                .push(Refused { at, via, errcode });
        }
        WxError::new(errcode)
    }

    pub fn deliver(&mut self, openid: &str, via: Via, body: InboxBody) {
        let at = self.now();
        self.inbox
            .entry(openid.to_owned())
            .or_default()
            .push(InboxMessage { at, via, body });
    }
}

/// An access_token shaped like WeChat's: 136 characters of base64url.
pub(crate) fn random_token() -> String {
    let mut bytes = [0u8; 102];
    rand::thread_rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A short opaque id (OAuth codes, media ids).
pub(crate) fn random_id(len: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::thread_rng();
    (0..len)
        .map(|_| char::from(ALPHABET[rng.gen_range(0..ALPHABET.len())]))
        .collect()
}

/// An openid shaped like WeChat's: "o" + 27 base64url characters.
pub fn random_openid() -> String {
    let mut bytes = [0u8; 20];
    rand::thread_rng().fill_bytes(&mut bytes);
    format!("o{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// A ticket shaped like WeChat's: standard base64 ending in "==". It always contains '+' and
/// '/' too, so a client that forgets to URL-encode it (or encodes it twice) fails every time,
/// not one time in two.
pub(crate) fn random_ticket() -> String {
    let mut bytes = [0u8; 58];
    loop {
        rand::thread_rng().fill_bytes(&mut bytes);
        let ticket = STANDARD.encode(bytes);
        if ticket.contains('+') && ticket.contains('/') {
            return ticket;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_look_like_wechat() {
        let t = random_ticket();
        assert!(
            t.contains('+') && t.contains('/') && t.ends_with("=="),
            "{t}"
        );
        let o = random_openid();
        assert_eq!(o.len(), 28);
        assert!(o.starts_with('o'));
        assert_eq!(random_token().len(), 136);
    }

    #[test]
    fn faults_are_consumed() {
        let mut st = State::default();
        st.faults.insert("x".into(), (45009, 2));
        assert_eq!(st.take_fault("x").unwrap_err().errcode, 45009);
        assert_eq!(st.take_fault("x").unwrap_err().errcode, 45009);
        assert!(st.take_fault("x").is_ok());
    }

    #[test]
    fn errmsg_carries_a_rid() {
        let e = WxError::new(40053);
        assert!(
            e.errmsg.starts_with("invalid action info rid: "),
            "{}",
            e.errmsg
        );
    }
}
