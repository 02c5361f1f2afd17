//! The built-in WeChat simulator.
//!
//! Two jobs: in sandbox mode (no `WECHAT_APPID`) Fission mounts it at `/sandbox/` so the whole
//! product works on a laptop, and integration tests start it standalone as an honest stand-in for
//! WeChat: it validates requests the way WeChat does (a buggy client fails against it), counts
//! calls and lets tests inject faults.
//!
//! One base URL serves what WeChat spreads over api.weixin.qq.com (`/cgi-bin/*`, `/sns/*`),
//! mp.weixin.qq.com (`/cgi-bin/showqrcode`) and open.weixin.qq.com (`/connect/oauth2/authorize`).
//! Beside them are the pages a phone would show: `/` (index), `/scan?ticket=` (what a QR code
//! opens), `/users`, `/inbox/{openid}`; and `/avatar/{openid}.png`, `/media/{media_id}`.
//!
//! Conventions worth knowing when testing against it:
//! - API errors are HTTP 200 `{"errcode","errmsg"}`; errmsg ends in " rid: …" like WeChat's, so
//!   match on errcode. The wrong HTTP method is 43001/43002; a body that is not JSON is 47001.
//! - `calls(api)` counts every request to that API, whatever its outcome.
//! - Faults: `fail_next(api, errcode, times)` answers that API with an errcode (a storm, with a
//!   large `times`), `invalidate_tokens()` makes every issued token answer 40001, and
//!   `set_latency(d)` makes every API call take `d`.
//! - Templates: the account has the templates of `SimConfig::templates` (by default
//!   `tpl_invite_progress`, a category template, and `sub_invite_progress`, a subscription
//!   template, both declaring thing1, number2, thing3); a message must fill exactly the
//!   declared keywords with values their type allows (47003 otherwise).
//! - Customer-service messages follow the rules since 2023-06-12 (`wechat::allowance`): 5 in
//!   48 h after the user's message, 3 in a minute after a follow, scan or click; 45047 past the
//!   count, 45015 past the time. Only what the user does through the simulator counts (its
//!   pages, `follow`, `send_text`, `click`, `answer_subscription`, `add_user`).
//! - Time: tokens, tickets, codes, media and the 48 h window follow the simulated clock
//!   (`advance_clock`); pushes carry it as CreateTime, but their query `timestamp` is real time,
//!   since the receiving service checks that against its own clock.

mod api;
mod images;
mod media;
mod oauth;
#[cfg(test)]
mod oauth_tests;
mod pages;
#[cfg(test)]
mod pages_tests;
mod people;
mod push;
#[cfg(test)]
mod push_tests;
mod qrcode;
mod state;
mod subscribe;
#[cfg(test)]
mod test_support;
mod token;

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use actix_web::web;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use sha1::{Digest, Sha1};

use crate::wechat::allowance::Opener;
pub use push::{PushOutcome, SimError};
pub use state::{random_openid, InboxBody, InboxMessage, SimUser, Via, WxError};

use state::State;

/// How the simulated account is set up.
#[derive(Clone)]
pub struct SimConfig {
    pub appid: String,
    pub secret: String,
    /// The callback Token configured "in the console": pushes are signed with it.
    pub token: String,
    /// Set = safe mode: pushes are encrypted and encrypted replies expected.
    pub encoding_aes_key: Option<String>,
    /// Where pushes go, e.g. `http://127.0.0.1:8080/wechat/callback`.
    pub callback_url: Option<String>,
    /// Absolute URL where the simulator itself is reachable, e.g. `http://127.0.0.1:8080/sandbox`.
    /// QR codes encode `{public_base}/scan?ticket={urlencoded ticket}`.
    pub public_base: String,
    pub permanent_quota: u32,
    pub account_name: String,
    /// How long a push waits for the callback's answer: 5 s, as WeChat waits.
    pub push_timeout: std::time::Duration,
    /// The account's message templates (category templates and subscription templates).
    pub templates: Vec<SimTemplate>,
}

/// A message template of the simulated account, as the console lists it: its id and the
/// keyword fields it declares (a message must fill exactly these).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimTemplate {
    pub id: String,
    pub kind: TemplateKind,
    pub title: String,
    pub fields: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TemplateKind {
    /// `message/template/send` (类目模板).
    Category,
    /// `message/subscribe/bizsend` (一次性订阅通知).
    Subscription,
}

/// The templates the sandbox account has, for the campaign form's examples and the tests.
pub fn default_templates() -> Vec<SimTemplate> {
    let fields = |f: &[&str]| f.iter().map(|s| s.to_string()).collect();
    vec![
        SimTemplate {
            id: "tpl_invite_progress".into(),
            kind: TemplateKind::Category,
            title: "邀请进度通知".into(),
            fields: fields(&["thing1", "number2", "thing3"]),
        },
        SimTemplate {
            id: "sub_invite_progress".into(),
            kind: TemplateKind::Subscription,
            title: "好友助力提醒".into(),
            fields: fields(&["thing1", "number2", "thing3"]),
        },
    ]
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            appid: "wx5a4d00000000sbx".into(),
            secret: "sandbox0secret0not0for0production".into(),
            token: "fission".into(),
            encoding_aes_key: None,
            callback_url: None,
            public_base: "http://127.0.0.1:8080/sandbox".into(),
            permanent_quota: 100_000,
            account_name: "Fission 测试号".into(),
            push_timeout: std::time::Duration::from_secs(5),
            templates: default_templates(),
        }
    }
}

impl fmt::Debug for SimConfig {
    // The secret and the AES key stay out of logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimConfig")
            .field("appid", &self.appid)
            .field("secret", &"[redacted]")
            .field("token", &"[redacted]")
            .field(
                "encoding_aes_key",
                &self.encoding_aes_key.as_ref().map(|_| "[redacted]"),
            )
            .field("callback_url", &self.callback_url)
            .field("public_base", &self.public_base)
            .field("permanent_quota", &self.permanent_quota)
            .field("account_name", &self.account_name)
            .finish()
    }
}

/// The simulator; cheap to clone (shared state).
#[derive(Clone)]
pub struct Simulator {
    inner: Arc<Inner>,
}

struct Inner {
    cfg: SimConfig,
    /// The account's original id ("gh_…"), the ToUserName of every push.
    gh_id: String,
    /// Path part of `public_base` ("/sandbox" or ""), prefix of the pages' links.
    base_path: String,
    state: Mutex<State>,
    http: reqwest::Client,
}

impl Simulator {
    pub fn new(cfg: SimConfig) -> Self {
        let public_base = cfg.public_base.trim_end_matches('/').to_owned();
        let cfg = SimConfig { public_base, ..cfg };
        let digest = hex::encode(Sha1::digest(cfg.appid.as_bytes()));
        let gh_id = format!("gh_{}", &digest[..12]);
        let base_path = base_path_of(&cfg.public_base);
        let state = State {
            permanent_quota: cfg.permanent_quota,
            callback_url: cfg.callback_url.clone(),
            ..State::default()
        };
        Self {
            inner: Arc::new(Inner {
                cfg,
                gh_id,
                base_path,
                state: Mutex::new(state),
                http: reqwest::Client::new(),
            }),
        }
    }

    /// Registers every route relative to where the caller mounts it
    /// (`web::scope("/sandbox").configure(|c| sim.configure(c))`, or the root of a test server).
    pub fn configure(&self, cfg: &mut web::ServiceConfig) {
        cfg.app_data(web::Data::new(self.clone()));
        token::routes(cfg);
        qrcode::routes(cfg);
        api::routes(cfg);
        media::routes(cfg);
        oauth::routes(cfg);
        pages::routes(cfg);
        people::routes(cfg);
        subscribe::routes(cfg);
    }

    pub fn config(&self) -> &SimConfig {
        &self.inner.cfg
    }

    /// The account's original id, `gh_…`: ToUserName of pushes, FromUserName of replies.
    pub fn account_id(&self) -> &str {
        &self.inner.gh_id
    }

    /// Requests received for `api` ("token", "stable_token", "qrcode/create", "showqrcode",
    /// "user/info", "user/get", "message/custom/send", "message/template/send", "media/upload",
    /// "oauth2/access_token", "sns/userinfo"), whatever their outcome.
    pub fn calls(&self, api: &str) -> usize {
        self.state().calls.get(api).copied().unwrap_or(0)
    }

    /// Every access_token issued so far answers 40001 from now on.
    pub fn invalidate_tokens(&self) {
        let mut st = self.state();
        for t in st.tokens.values_mut() {
            t.invalidated = true;
        }
        st.latest_token = None;
        st.stable_token = None;
    }

    /// The next `times` calls of `api` answer `{"errcode":errcode,…}`, after the credential checks.
    pub fn fail_next(&self, api: &str, errcode: i64, times: usize) {
        let mut st = self.state();
        if times == 0 {
            st.faults.remove(api);
        } else {
            st.faults.insert(api.to_owned(), (errcode, times));
        }
    }

    /// Where pushes go from now on (a test that starts the service after the stand-in).
    pub fn set_callback(&self, url: &str) {
        self.state().callback_url = Some(url.to_owned());
    }

    /// Every API call (`/cgi-bin/*`, `/sns/*`) is answered only after `delay`, as WeChat is on
    /// a bad day; zero (the default) answers at once. The call is counted when it arrives.
    pub fn set_latency(&self, delay: std::time::Duration) {
        self.state().latency = delay;
    }

    pub fn set_permanent_quota(&self, n: u32) {
        self.state().permanent_quota = n;
    }

    /// Creates a simulated user, or renames an existing one and sets its follow state. A user
    /// added as following counts as having followed just now (which opens the 48 h window).
    pub fn add_user(&self, openid: &str, nickname: &str, following: bool) {
        let mut st = self.state();
        let now = st.now();
        let user = st.ensure_user(openid, nickname);
        user.nickname = nickname.to_owned();
        if following && !user.following {
            user.following = true;
            user.subscribe_time = Some(now);
            user.subscribe_scene = "ADD_SCENE_OTHERS".into();
            user.act(Opener::Action, now);
        } else if !following {
            user.allowance = user.allowance.closed();
            user.following = false;
            user.subscribe_time = None;
            user.subscribe_scene.clear();
            user.qr_scene = 0;
            user.qr_scene_str.clear();
        }
    }

    /// All simulated users, in creation order.
    pub fn users(&self) -> Vec<SimUser> {
        let st = self.state();
        st.user_order
            .iter()
            .filter_map(|o| st.users.get(o).cloned())
            .collect()
    }

    /// What the service sent to that user, oldest first (passive replies included).
    pub fn inbox(&self, openid: &str) -> Vec<InboxMessage> {
        self.state().inbox.get(openid).cloned().unwrap_or_default()
    }

    /// The jsapi_ticket issued last, if any.
    pub fn jsapi_ticket(&self) -> Option<String> {
        self.state().jsapi_tickets.last().cloned()
    }

    /// Bodies of the accepted `qrcode/create` calls, in order.
    pub fn qrcode_requests(&self) -> Vec<serde_json::Value> {
        self.state().qrcode_requests.clone()
    }

    /// Mints an OAuth code as if the user had approved (the user is created if unknown).
    pub fn oauth_code_for(&self, openid: &str, scope: &str) -> String {
        let mut st = self.state();
        st.ensure_user(openid, openid);
        oauth::mint_code(&mut st, openid, scope)
    }

    /// Moves the simulated clock (token, ticket, code and media expiry; message allowances).
    pub fn advance_clock(&self, secs: i64) {
        self.state().clock_offset += secs;
    }

    /// Simulated unix time.
    pub fn now(&self) -> i64 {
        self.state().now()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere must not take the simulator down with it: the data stays usable.
        self.inner
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Waits out the injected latency (never holding the state's lock meanwhile).
    async fn lag(&self) {
        let delay = self.state().latency;
        if !delay.is_zero() {
            actix_web::rt::time::sleep(delay).await;
        }
    }

    /// Counts the call, then checks the access_token, then consumes an injected fault.
    fn gate(&self, api: &str, access_token: Option<&str>) -> Result<(), WxError> {
        let mut st = self.state();
        st.count(api);
        st.check_token(access_token)?;
        st.take_fault(api)
    }

    fn link(&self, path: &str) -> String {
        format!("{}{path}", self.inner.base_path)
    }

    fn absolute(&self, path: &str) -> String {
        format!("{}{path}", self.inner.cfg.public_base)
    }
}

/// Everything but RFC 3986's unreserved characters is escaped, so the value survives in any
/// query string ('+', '/', '=' of tickets included).
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

pub(crate) fn encode_component(value: &str) -> String {
    utf8_percent_encode(value, COMPONENT).to_string()
}

fn base_path_of(public_base: &str) -> String {
    let after_scheme = public_base
        .split_once("://")
        .map_or(public_base, |(_, rest)| rest);
    match after_scheme.find('/') {
        Some(i) => after_scheme[i..].trim_end_matches('/').to_owned(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_path_is_the_path_of_public_base() {
        assert_eq!(base_path_of("http://127.0.0.1:8080/sandbox"), "/sandbox");
        assert_eq!(base_path_of("http://127.0.0.1:8080/sandbox/"), "/sandbox");
        assert_eq!(base_path_of("https://x.example/a/sandbox"), "/a/sandbox");
        assert_eq!(base_path_of("http://127.0.0.1:9"), "");
    }

    #[test]
    fn push_futures_can_be_spawned() {
        // Fission may drive these from tokio::spawn, which needs Send futures: no lock guard
        // may live across an .await.
        fn assert_send<T: Send>(_: &T) {}
        let sim = Simulator::new(SimConfig::default());
        assert_send(&sim.follow("o", None));
        assert_send(&sim.unfollow("o"));
        assert_send(&sim.send_text("o", "x"));
    }

    #[test]
    fn debug_hides_secrets() {
        let text = format!("{:?}", SimConfig::default());
        assert!(!text.contains("sandbox0secret"));
    }
}
