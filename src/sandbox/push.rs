//! Pushes to the service's callback, as WeChat sends them: subscribe / SCAN / unsubscribe events
//! and text messages, signed with the Token (and encrypted in safe mode), 5 s timeout. The
//! passive reply is checked the way WeChat would (a wrong envelope, signature or addressee means
//! the user never sees it) and what the user would see lands in their inbox.

use std::collections::HashMap;

use quick_xml::events::Event;
use quick_xml::Reader;
use rand::Rng;

use super::state::{InboxBody, Via};
use super::{Simulator, TemplateKind};
use crate::wechat::allowance::Opener;
use crate::wechat::crypto::MessageCrypto;
use crate::wechat::message::{push_xml, Push, SubscriptionChoice};
use crate::wechat::outgoing::{nonce, sign_push};

/// WeChat gives up on a callback after 5 s.
/// Replies larger than this are not read into memory.
const MAX_REPLY_BYTES: usize = 256 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("unknown simulated user {0}")]
    UnknownUser(String),
    #[error("unknown or expired ticket")]
    UnknownTicket,
    #[error("{0} already follows the account (a re-follow needs a ticket: that is a SCAN)")]
    AlreadyFollowing(String),
    #[error("{0} does not follow the account")]
    NotFollowing(String),
    #[error("no callback_url is configured")]
    NoCallback,
    #[error("the account has no such subscription template")]
    UnknownTemplate,
    #[error("cannot encrypt the push: {0}")]
    Crypto(String),
    #[error("the push did not get an answer: {0}")]
    Transport(String),
}

/// What the callback answered to one push.
#[derive(Debug, Clone)]
pub struct PushOutcome {
    pub status: u16,
    pub body: String,
    /// The plaintext push XML that was sent (before encryption), e.g. to replay it as a retry.
    pub push_xml: String,
    /// The passive reply (decrypted in safe mode) when the callback answered one WeChat accepts.
    pub reply_xml: Option<String>,
    /// Why a non-empty answer is not a deliverable passive reply; WeChat would show the user
    /// "该公众号暂时无法提供服务，请稍后再试".
    pub reply_error: Option<String>,
}

impl Simulator {
    /// The user follows the account: `subscribe` (EventKey `qrscene_<scene>` + Ticket when
    /// `ticket` is given, a plain follow when not), or `SCAN` when they already follow and
    /// scanned a ticket. The follow state changes only when the callback answers HTTP 200.
    pub async fn follow(
        &self,
        openid: &str,
        ticket: Option<&str>,
    ) -> Result<PushOutcome, SimError> {
        let (push, scene) = {
            let st = self.state();
            let user = st
                .users
                .get(openid)
                .ok_or_else(|| SimError::UnknownUser(openid.to_owned()))?;
            let scene = match ticket {
                Some(t) => Some(
                    st.live_ticket(t)
                        .ok_or(SimError::UnknownTicket)?
                        .scene
                        .clone(),
                ),
                None => None,
            };
            let (event, key) = match (&scene, user.following) {
                (None, true) => return Err(SimError::AlreadyFollowing(openid.to_owned())),
                (Some(scene), true) => ("SCAN", scene.to_string()),
                (Some(scene), false) => ("subscribe", format!("qrscene_{scene}")),
                (None, false) => ("subscribe", String::new()),
            };
            let mut push = self.event_push(st.now(), openid, event, key);
            push.ticket = ticket.map(str::to_owned);
            (push, scene)
        };
        let outcome = self.deliver(&push).await?;
        if outcome.status == 200 {
            let mut st = self.state();
            if let Some(user) = st.users.get_mut(openid) {
                user.act(Opener::Action, push.create_time);
                if !user.following {
                    user.following = true;
                    user.subscribe_time = Some(push.create_time);
                    user.subscribe_scene = match scene {
                        Some(_) => "ADD_SCENE_QR_CODE".into(),
                        None => "ADD_SCENE_OTHERS".into(),
                    };
                    (user.qr_scene, user.qr_scene_str) = match scene {
                        Some(super::state::Scene::Id(id)) => (id, String::new()),
                        Some(super::state::Scene::Str(s)) => (0, s),
                        None => (0, String::new()),
                    };
                }
            }
        }
        Ok(outcome)
    }

    /// The user unfollows: `unsubscribe`. The follow state changes when the callback answers 200.
    pub async fn unfollow(&self, openid: &str) -> Result<PushOutcome, SimError> {
        let push = {
            let st = self.state();
            following(&st, openid)?;
            self.event_push(st.now(), openid, "unsubscribe", String::new())
        };
        let outcome = self.deliver(&push).await?;
        if outcome.status == 200 {
            let mut st = self.state();
            if let Some(user) = st.users.get_mut(openid) {
                user.following = false;
                user.allowance = user.allowance.closed();
                user.accepted.clear();
                user.subscribe_time = None;
                user.subscribe_scene.clear();
                user.qr_scene = 0;
                user.qr_scene_str.clear();
            }
        }
        Ok(outcome)
    }

    /// The user (a follower) sends a text message; it carries a MsgId.
    pub async fn send_text(&self, openid: &str, content: &str) -> Result<PushOutcome, SimError> {
        let push = {
            let st = self.state();
            following(&st, openid)?;
            Push {
                to_user: self.inner.gh_id.clone(),
                from_user: openid.to_owned(),
                create_time: st.now(),
                msg_type: "text".into(),
                event: None,
                event_key: None,
                ticket: None,
                content: Some(content.to_owned()),
                msg_id: Some(rand::thread_rng().gen_range(10_i64.pow(18)..i64::MAX)),
                subscriptions: Vec::new(),
            }
        };
        self.act(push, Opener::Message).await
    }

    /// The user (a follower) taps a menu item of type click: `CLICK` with its key.
    pub async fn click(&self, openid: &str, key: &str) -> Result<PushOutcome, SimError> {
        let push = {
            let st = self.state();
            following(&st, openid)?;
            self.event_push(st.now(), openid, "CLICK", key.to_owned())
        };
        self.act(push, Opener::Action).await
    }

    /// The user answers a subscription prompt on an H5 page (`wx-open-subscribe`, PopupScene
    /// 1): each accepted template allows one `subscribe/bizsend`. WeChat pushes
    /// `subscribe_msg_popup_event` with one List per template. Unknown templates are refused
    /// as the open tag would (nothing is shown).
    pub async fn answer_subscription(
        &self,
        openid: &str,
        templates: &[&str],
        accept: bool,
    ) -> Result<PushOutcome, SimError> {
        let push = {
            let st = self.state();
            following(&st, openid)?;
            let known = |id: &&str| {
                self.inner
                    .cfg
                    .templates
                    .iter()
                    .any(|t| t.id == *id && t.kind == TemplateKind::Subscription)
            };
            if templates.is_empty() || !templates.iter().all(known) {
                return Err(SimError::UnknownTemplate);
            }
            let mut push =
                self.event_push(st.now(), openid, "subscribe_msg_popup_event", String::new());
            push.event_key = None;
            push.subscriptions = templates
                .iter()
                .map(|t| SubscriptionChoice {
                    template_id: (*t).to_owned(),
                    status: if accept { "accept" } else { "reject" }.into(),
                    popup_scene: Some("1".into()),
                })
                .collect();
            push
        };
        // WeChat records the answer whatever the callback says; the push only informs.
        if accept {
            let mut st = self.state();
            if let Some(user) = st.users.get_mut(openid) {
                for t in templates {
                    *user.accepted.entry((*t).to_owned()).or_default() += 1;
                }
            }
        }
        self.deliver(&push).await
    }

    /// Sends any push as WeChat would (signed, encrypted in safe mode) without touching the
    /// simulated users: for replaying a retry with the same CreateTime, or out-of-order pushes.
    /// A passive reply is still recorded in the addressee's inbox.
    pub async fn deliver(&self, push: &Push) -> Result<PushOutcome, SimError> {
        let cfg = &self.inner.cfg;
        let callback = self
            .state()
            .callback_url
            .clone()
            .ok_or(SimError::NoCallback)?;
        let crypto = match &cfg.encoding_aes_key {
            Some(key) => Some(
                MessageCrypto::new(key, &cfg.token, &cfg.appid)
                    .map_err(|e| SimError::Crypto(e.to_string()))?,
            ),
            None => None,
        };
        // The query timestamp is the transport's real clock (the service checks it against its
        // own); the simulated clock only drives CreateTime.
        let signed = sign_push(
            &cfg.token,
            crypto.as_ref(),
            push,
            chrono::Utc::now().timestamp(),
            &nonce(),
        );
        let (query, body) = (signed.query, signed.body);
        let query =
            serde_urlencoded::to_string(&query).map_err(|e| SimError::Transport(e.to_string()))?;
        let separator = if callback.contains('?') { '&' } else { '?' };
        let response = self
            .inner
            .http
            .post(format!("{callback}{separator}{query}"))
            .header("content-type", "text/xml")
            .body(body)
            .timeout(cfg.push_timeout)
            .send()
            .await
            .map_err(|e| SimError::Transport(e.to_string()))?;
        let status = response.status().as_u16();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| SimError::Transport(e.to_string()))?;
        let answer =
            String::from_utf8_lossy(&bytes[..bytes.len().min(MAX_REPLY_BYTES)]).into_owned();

        let mut outcome = PushOutcome {
            status,
            body: answer,
            push_xml: push_xml(push),
            reply_xml: None,
            reply_error: None,
        };
        if status == 200 {
            match self.read_reply(&outcome.body, crypto.as_ref(), &push.from_user) {
                Ok(Some((reply, message))) => {
                    self.state()
                        .deliver(&push.from_user, Via::PassiveReply, message);
                    outcome.reply_xml = Some(reply);
                }
                Ok(None) => {}
                Err(why) => {
                    tracing::warn!(openid = %push.from_user, %why, "sandbox: undeliverable passive reply");
                    outcome.reply_error = Some(why);
                }
            }
        }
        Ok(outcome)
    }

    /// Delivers a push the user made by acting, and counts the action toward their
    /// customer-service allowance once the callback has taken it.
    async fn act(&self, push: Push, opener: Opener) -> Result<PushOutcome, SimError> {
        let outcome = self.deliver(&push).await?;
        if outcome.status == 200 {
            if let Some(user) = self.state().users.get_mut(&push.from_user) {
                user.act(opener, push.create_time);
            }
        }
        Ok(outcome)
    }

    fn event_push(&self, now: i64, openid: &str, event: &str, key: String) -> Push {
        Push {
            to_user: self.inner.gh_id.clone(),
            from_user: openid.to_owned(),
            create_time: now,
            msg_type: "event".into(),
            event: Some(event.into()),
            event_key: Some(key),
            ticket: None,
            content: None,
            msg_id: None,
            subscriptions: Vec::new(),
        }
    }

    /// A callback answer as WeChat reads it: "" or "success" is no reply; otherwise a passive
    /// reply XML, inside a signed encrypted envelope in safe mode, addressed to the user from
    /// the account.
    fn read_reply(
        &self,
        answer: &str,
        crypto: Option<&MessageCrypto>,
        openid: &str,
    ) -> Result<Option<(String, InboxBody)>, String> {
        let answer = answer.trim();
        if answer.is_empty() || answer == "success" {
            return Ok(None);
        }
        let reply = match crypto {
            None => answer.to_owned(),
            Some(crypto) => {
                let env = xml_fields(answer)?;
                let field = |name: &str| {
                    env.get(name)
                        .map(String::as_str)
                        .ok_or_else(|| format!("safe mode: the reply envelope lacks <{name}>"))
                };
                let (encrypt, timestamp, nonce) =
                    (field("Encrypt")?, field("TimeStamp")?, field("Nonce")?);
                if crypto.msg_signature(timestamp, nonce, encrypt) != field("MsgSignature")? {
                    return Err("safe mode: the reply's MsgSignature does not verify".into());
                }
                crypto
                    .decrypt(encrypt)
                    .map_err(|e| format!("safe mode: cannot decrypt the reply: {e}"))?
            }
        };
        let fields = xml_fields(&reply)?;
        let get = |name: &str| fields.get(name).map(String::as_str).unwrap_or("");
        if get("ToUserName") != openid {
            return Err(format!(
                "reply ToUserName is {:?}, expected the user {openid:?}",
                get("ToUserName")
            ));
        }
        if get("FromUserName") != self.inner.gh_id {
            return Err(format!(
                "reply FromUserName is {:?}, expected the account {:?}",
                get("FromUserName"),
                self.inner.gh_id
            ));
        }
        if get("CreateTime").parse::<i64>().is_err() {
            return Err("reply CreateTime is missing or not a number".into());
        }
        let body = match get("MsgType") {
            "text" => InboxBody::Text {
                content: get("Content").to_owned(),
            },
            "image" if !get("Image/MediaId").is_empty() => InboxBody::Image {
                media_id: get("Image/MediaId").to_owned(),
            },
            "" => return Err("reply has no MsgType".into()),
            other => InboxBody::Other {
                msg_type: other.to_owned(),
                xml: reply.clone(),
            },
        };
        Ok(Some((reply, body)))
    }
}

/// Leaf elements under `<xml>` keyed by their path ("Content", "Image/MediaId").
/// No DOCTYPE: WeChat accepts none, and the simulator must not expand entities either.
pub(crate) fn xml_fields(xml: &str) -> Result<HashMap<String, String>, String> {
    let mut reader = Reader::from_str(xml);
    let mut path: Vec<String> = Vec::new();
    let mut fields = HashMap::new();
    let mut root_seen = false;
    loop {
        match reader
            .read_event()
            .map_err(|e| format!("malformed XML: {e}"))?
        {
            Event::DocType(_) => return Err("a DOCTYPE is not accepted".into()),
            Event::Start(e) => {
                let name = String::from_utf8_lossy(e.name().as_ref()).into_owned();
                if path.is_empty() {
                    if root_seen || name != "xml" {
                        return Err("the root element must be a single <xml>".into());
                    }
                    root_seen = true;
                }
                path.push(name);
            }
            Event::Empty(e) if !path.is_empty() => {
                let name = String::from_utf8_lossy(e.name().as_ref()).into_owned();
                path.push(name);
                fields.insert(key(&path), String::new());
                path.pop();
            }
            Event::End(_) => {
                path.pop();
            }
            Event::Text(t) if path.len() > 1 => {
                let text = t.unescape().map_err(|e| format!("malformed XML: {e}"))?;
                fields
                    .entry(key(&path))
                    .or_insert_with(String::new)
                    .push_str(&text);
            }
            Event::CData(c) if path.len() > 1 => {
                let text = c.decode().map_err(|e| format!("malformed XML: {e}"))?;
                fields
                    .entry(key(&path))
                    .or_insert_with(String::new)
                    .push_str(&text);
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if !root_seen || !path.is_empty() {
        return Err("missing or unclosed <xml> root element".into());
    }
    Ok(fields)
}

/// The path below the root: ["xml", "Image", "MediaId"] → "Image/MediaId".
fn key(path: &[String]) -> String {
    path.get(1..).unwrap_or_default().join("/")
}

/// The user, who must follow the account to do this.
fn following<'a>(
    st: &'a super::state::State,
    openid: &str,
) -> Result<&'a super::state::SimUser, SimError> {
    let user = st
        .users
        .get(openid)
        .ok_or_else(|| SimError::UnknownUser(openid.to_owned()))?;
    if !user.following {
        return Err(SimError::NotFollowing(openid.to_owned()));
    }
    Ok(user)
}
