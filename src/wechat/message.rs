//! WeChat push XML: parsing what WeChat posts to the callback URL, and building passive replies.
//!
//! The parser is deliberately narrow: a flat `<xml>` of child elements, bounded in size, with
//! no DOCTYPE and no entity other than XML's predefined ones, so hostile bodies cannot make it
//! expand, fetch or allocate anything unexpected.

use quick_xml::events::Event;
use quick_xml::Reader;

pub const MAX_BODY_BYTES: usize = 64 * 1024;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ParseError {
    #[error("body exceeds 64 KiB")]
    TooLarge,
    #[error("DOCTYPE and entity declarations are not accepted")]
    Doctype,
    #[error("malformed XML: {0}")]
    Malformed(String),
    #[error("missing field {0}")]
    Missing(&'static str),
    #[error("field {0} has an invalid value")]
    Invalid(&'static str),
}

/// A push from WeChat, as received (raw strings; the caller parses scenes into domain types).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Push {
    pub to_user: String,
    pub from_user: String,
    pub create_time: i64,
    /// "event", "text", "image", ...
    pub msg_type: String,
    /// as sent, e.g. "subscribe", "SCAN", "unsubscribe", "CLICK"
    pub event: Option<String>,
    /// "" normalised to None
    pub event_key: Option<String>,
    pub ticket: Option<String>,
    /// text messages
    pub content: Option<String>,
    pub msg_id: Option<i64>,
    /// The follower's answers to a subscription-notice prompt (`subscribe_msg_popup_event`)
    /// or later changes of mind (`subscribe_msg_change_event`): one per template.
    pub subscriptions: Vec<SubscriptionChoice>,
}

/// One `<List>` entry of a subscription-notice event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionChoice {
    pub template_id: String,
    /// "accept" or "reject".
    pub status: String,
    /// 1: the H5 page's open tag; 2: a message. Absent in change events.
    pub popup_scene: Option<String>,
}

impl SubscriptionChoice {
    pub fn accepted(&self) -> bool {
        self.status.eq_ignore_ascii_case("accept")
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushKind<'a> {
    /// `scene` is the EventKey with its "qrscene_" prefix stripped; None for a plain follow.
    Subscribe {
        scene: Option<&'a str>,
        ticket: Option<&'a str>,
    },
    /// SCAN EventKey has no prefix.
    Scan {
        scene: &'a str,
        ticket: Option<&'a str>,
    },
    Unsubscribe,
    Click {
        key: &'a str,
    },
    Text {
        content: &'a str,
    },
    /// Another message type (image, voice, link …): the follower wrote to the account.
    Message,
    /// The follower accepted or rejected subscription notices (`subscribe_msg_popup_event`,
    /// `subscribe_msg_change_event`).
    Subscriptions {
        choices: &'a [SubscriptionChoice],
    },
    /// Anything else (never an error).
    Other,
}

const QR_SCENE_PREFIX: &str = "qrscene_";

impl Push {
    /// Classifies the push. Event and message type names are matched case-insensitively
    /// because WeChat has sent them in mixed case over the years.
    ///
    /// A subscribe whose EventKey lacks the "qrscene_" prefix (or has nothing after it) did
    /// not come through a parametric code, so it is reported as a plain follow (`scene: None`)
    /// rather than trusting the key as a scene. SCAN and CLICK without a key are `Other`.
    pub fn kind(&self) -> PushKind<'_> {
        let ticket = self.ticket.as_deref();
        if self.msg_type.eq_ignore_ascii_case("text") {
            return PushKind::Text {
                content: self.content.as_deref().unwrap_or(""),
            };
        }
        if !self.msg_type.eq_ignore_ascii_case("event") {
            return PushKind::Message;
        }
        let Some(event) = self.event.as_deref() else {
            return PushKind::Other;
        };
        let key = self.event_key.as_deref();
        if event.eq_ignore_ascii_case("subscribe") {
            let scene = key
                .and_then(|k| k.strip_prefix(QR_SCENE_PREFIX))
                .filter(|s| !s.is_empty());
            PushKind::Subscribe { scene, ticket }
        } else if event.eq_ignore_ascii_case("scan") {
            match key {
                Some(scene) => PushKind::Scan { scene, ticket },
                None => PushKind::Other,
            }
        } else if event.eq_ignore_ascii_case("unsubscribe") {
            PushKind::Unsubscribe
        } else if event.eq_ignore_ascii_case("click") {
            match key {
                Some(key) => PushKind::Click { key },
                None => PushKind::Other,
            }
        } else if event.eq_ignore_ascii_case("subscribe_msg_popup_event")
            || event.eq_ignore_ascii_case("subscribe_msg_change_event")
        {
            PushKind::Subscriptions {
                choices: &self.subscriptions,
            }
        } else {
            PushKind::Other
        }
    }

    /// What makes two deliveries the same push: a message's MsgId, or for an event its
    /// sender, CreateTime, event and EventKey — WeChat retries an event with the same
    /// CreateTime and no MsgId, so those fields are what identifies a retry.
    pub fn dedupe_key(&self) -> String {
        match self.msg_id {
            Some(id) => format!("msg:{id}"),
            None => {
                let mut key = format!(
                    "ev:{}:{}:{}:{}",
                    self.from_user,
                    self.create_time,
                    self.event.as_deref().unwrap_or(""),
                    self.event_key.as_deref().unwrap_or("")
                );
                // Two answers to subscription prompts in one second differ by their lists.
                for c in &self.subscriptions {
                    key.push_str(&format!(":{}={}", c.template_id, c.status));
                }
                key
            }
        }
    }
}

/// Child elements of `<xml>` that the parsers read; everything else is skipped.
const KNOWN_FIELDS: [&str; 10] = [
    "ToUserName",
    "FromUserName",
    "CreateTime",
    "MsgType",
    "Event",
    "EventKey",
    "Ticket",
    "Content",
    "MsgId",
    "Encrypt",
];

/// The text of each known field, indexed like [`KNOWN_FIELDS`], and the `<List>` entries of
/// a subscription-notice event.
struct Fields(
    [Option<String>; KNOWN_FIELDS.len()],
    Vec<SubscriptionChoice>,
);

/// Elements whose `<List>` children are subscription choices.
const CHOICE_CONTAINERS: [&str; 2] = ["SubscribeMsgPopupEvent", "SubscribeMsgChangeEvent"];
/// A subscription event carries one entry per template; more than this is not WeChat.
const MAX_CHOICES: usize = 20;

/// A `<List>` entry being read: its fields so far, and the one open now.
#[derive(Default)]
struct ChoiceBuilder {
    template_id: Option<String>,
    status: Option<String>,
    popup_scene: Option<String>,
    open: Option<(u8, String)>,
}

impl ChoiceBuilder {
    fn open(&mut self, name: &[u8]) {
        let which = match name {
            b"TemplateId" => 0,
            b"SubscribeStatusString" => 1,
            b"PopupScene" => 2,
            _ => return,
        };
        self.open = Some((which, String::new()));
    }

    fn text(&mut self, text: &str) {
        if let Some((_, buf)) = self.open.as_mut() {
            buf.push_str(text);
        }
    }

    fn close(&mut self) {
        if let Some((which, value)) = self.open.take() {
            let value = Some(value.trim().to_owned()).filter(|v| !v.is_empty());
            match which {
                0 => self.template_id = value,
                1 => self.status = value,
                _ => self.popup_scene = value,
            }
        }
    }

    fn finish(self) -> Option<SubscriptionChoice> {
        Some(SubscriptionChoice {
            template_id: self.template_id?,
            status: self.status?,
            popup_scene: self.popup_scene,
        })
    }
}

impl Fields {
    fn take(&mut self, name: &'static str) -> Option<String> {
        let idx = KNOWN_FIELDS.iter().position(|f| *f == name)?;
        self.0.get_mut(idx)?.take()
    }

    /// Identifiers are trimmed so that pretty-printed XML still parses; free text is not.
    fn take_trimmed(&mut self, name: &'static str) -> Option<String> {
        self.take(name).map(|v| v.trim().to_owned())
    }

    fn required(&mut self, name: &'static str) -> Result<String, ParseError> {
        let value = self.take_trimmed(name).ok_or(ParseError::Missing(name))?;
        if value.is_empty() {
            return Err(ParseError::Invalid(name));
        }
        Ok(value)
    }

    fn optional(&mut self, name: &'static str) -> Option<String> {
        self.take_trimmed(name).filter(|v| !v.is_empty())
    }

    fn optional_i64(&mut self, name: &'static str) -> Result<Option<i64>, ParseError> {
        self.optional(name)
            .map(|v| v.parse().map_err(|_| ParseError::Invalid(name)))
            .transpose()
    }
}

fn malformed(err: impl std::fmt::Display) -> ParseError {
    ParseError::Malformed(err.to_string())
}

/// Reads the flat children of the `<xml>` root, keeping the text of [`KNOWN_FIELDS`].
///
/// Nested elements (e.g. ScanCodeInfo) are skipped along with their children. A known field
/// given twice is rejected: two FromUserName values would leave it ambiguous which one a
/// signature or a dedupe key was computed over.
fn read_fields(xml: &[u8]) -> Result<Fields, ParseError> {
    if xml.len() > MAX_BODY_BYTES {
        return Err(ParseError::TooLarge);
    }
    let text = std::str::from_utf8(xml).map_err(malformed)?;
    let mut reader = Reader::from_str(text);
    // Defaults already check end names and keep text untrimmed; stated here because the
    // parser's correctness depends on both.
    reader.config_mut().check_end_names = true;
    reader.config_mut().trim_text(false);

    let mut fields = Fields(Default::default(), Vec::new());
    // Inside a subscription event's container (depth 1), and the `<List>` entry being read.
    let mut in_choices = false;
    let mut choice: Option<ChoiceBuilder> = None;
    let mut depth = 0usize;
    let mut root_seen = false;
    // Index into KNOWN_FIELDS of the depth-1 element being read, and its text so far.
    let mut current: Option<(usize, String)> = None;

    loop {
        let event = reader.read_event().map_err(malformed)?;
        match event {
            // Checked first, so nothing after a DTD is ever looked at.
            Event::DocType(_) => return Err(ParseError::Doctype),
            Event::Start(start) => {
                if depth == 0 {
                    if root_seen || start.name().as_ref() != b"xml" {
                        return Err(malformed("expected a single <xml> root element"));
                    }
                    root_seen = true;
                } else if depth == 1 {
                    current = known_index(start.name().as_ref()).map(|i| (i, String::new()));
                    in_choices = CHOICE_CONTAINERS
                        .iter()
                        .any(|c| c.as_bytes() == start.name().as_ref());
                } else if depth == 2 && in_choices && start.name().as_ref() == b"List" {
                    choice = Some(ChoiceBuilder::default());
                } else if depth == 3 {
                    if let Some(c) = choice.as_mut() {
                        c.open(start.name().as_ref());
                    }
                }
                depth += 1;
            }
            Event::Empty(start) => {
                if depth == 0 {
                    if root_seen || start.name().as_ref() != b"xml" {
                        return Err(malformed("expected a single <xml> root element"));
                    }
                    root_seen = true;
                } else if depth == 1 {
                    if let Some(i) = known_index(start.name().as_ref()) {
                        store(&mut fields, i, String::new())?;
                    }
                }
            }
            Event::End(_) => {
                depth = depth.saturating_sub(1);
                if depth == 1 {
                    in_choices = false;
                    if let Some((i, value)) = current.take() {
                        store(&mut fields, i, value)?;
                    }
                } else if depth == 2 {
                    if let Some(done) = choice.take().and_then(ChoiceBuilder::finish) {
                        if fields.1.len() >= MAX_CHOICES {
                            return Err(malformed("too many subscription choices"));
                        }
                        fields.1.push(done);
                    }
                } else if depth == 3 {
                    if let Some(c) = choice.as_mut() {
                        c.close();
                    }
                }
            }
            Event::Text(t) => {
                let value = t.unescape().map_err(malformed)?;
                if depth == 2 {
                    if let Some((_, buf)) = current.as_mut() {
                        buf.push_str(&value);
                    }
                } else if depth == 4 {
                    if let Some(c) = choice.as_mut() {
                        c.text(&value);
                    }
                } else if depth == 0 && !value.trim().is_empty() {
                    return Err(malformed("text outside the <xml> root element"));
                }
            }
            Event::CData(c) => {
                if depth == 2 {
                    if let Some((_, buf)) = current.as_mut() {
                        buf.push_str(&c.decode().map_err(malformed)?);
                    }
                } else if depth == 4 {
                    if let Some(entry) = choice.as_mut() {
                        entry.text(&c.decode().map_err(malformed)?);
                    }
                } else if depth == 0 {
                    return Err(malformed("CDATA outside the <xml> root element"));
                }
            }
            Event::Comment(_) | Event::Decl(_) | Event::PI(_) => {}
            Event::Eof => break,
        }
    }
    if !root_seen || depth != 0 {
        return Err(malformed("missing or unclosed <xml> root element"));
    }
    Ok(fields)
}

fn known_index(name: &[u8]) -> Option<usize> {
    KNOWN_FIELDS.iter().position(|f| f.as_bytes() == name)
}

fn store(fields: &mut Fields, index: usize, value: String) -> Result<(), ParseError> {
    let slot = fields
        .0
        .get_mut(index)
        .ok_or_else(|| malformed("unknown field"))?;
    if slot.is_some() {
        let name = KNOWN_FIELDS.get(index).copied().unwrap_or("?");
        return Err(malformed(format!("duplicate field {name}")));
    }
    *slot = Some(value);
    Ok(())
}

pub fn parse_push(xml: &[u8]) -> Result<Push, ParseError> {
    let mut f = read_fields(xml)?;
    let to_user = f.required("ToUserName")?;
    let from_user = f.required("FromUserName")?;
    let create_time = f
        .required("CreateTime")?
        .parse()
        .map_err(|_| ParseError::Invalid("CreateTime"))?;
    let msg_type = f.required("MsgType")?;
    Ok(Push {
        to_user,
        from_user,
        create_time,
        msg_type,
        event: f.optional("Event"),
        event_key: f.optional("EventKey"),
        ticket: f.optional("Ticket"),
        // Message text is the user's own words: kept exactly, even when blank.
        content: f.take("Content"),
        msg_id: f.optional_i64("MsgId")?,
        subscriptions: std::mem::take(&mut f.1),
    })
}

/// The ciphertext of a safe-mode push (its `<Encrypt>` element; the rest of the envelope is
/// not covered by the signature and is ignored).
pub fn parse_encrypted_envelope(xml: &[u8]) -> Result<String, ParseError> {
    read_fields(xml)?.required("Encrypt")
}

/// Appends `text` as CDATA; a "]]>" inside is split across two sections so it cannot close
/// the section early.
pub(super) fn push_cdata(out: &mut String, text: &str) {
    out.push_str("<![CDATA[");
    out.push_str(&text.replace("]]>", "]]]]><![CDATA[>"));
    out.push_str("]]>");
}

fn push_cdata_field(out: &mut String, tag: &str, text: &str) {
    out.push('<');
    out.push_str(tag);
    out.push('>');
    push_cdata(out, text);
    out.push_str("</");
    out.push_str(tag);
    out.push('>');
}

fn push_number_field(out: &mut String, tag: &str, n: i64) {
    out.push('<');
    out.push_str(tag);
    out.push('>');
    out.push_str(&n.to_string());
    out.push_str("</");
    out.push_str(tag);
    out.push('>');
}

/// The header every reply and push starts with, in WeChat's field order.
fn push_header(out: &mut String, to_user: &str, from_user: &str, create_time: i64, kind: &str) {
    out.push_str("<xml>");
    push_cdata_field(out, "ToUserName", to_user);
    push_cdata_field(out, "FromUserName", from_user);
    push_number_field(out, "CreateTime", create_time);
    push_cdata_field(out, "MsgType", kind);
}

/// A passive text reply to the follower who pushed (To and From swapped from the push).
pub fn text_reply(to_user: &str, from_user: &str, create_time: i64, content: &str) -> String {
    let mut out = String::with_capacity(200 + content.len());
    push_header(&mut out, to_user, from_user, create_time, "text");
    push_cdata_field(&mut out, "Content", content);
    out.push_str("</xml>");
    out
}

pub fn image_reply(to_user: &str, from_user: &str, create_time: i64, media_id: &str) -> String {
    let mut out = String::with_capacity(250 + media_id.len());
    push_header(&mut out, to_user, from_user, create_time, "image");
    out.push_str("<Image>");
    push_cdata_field(&mut out, "MediaId", media_id);
    out.push_str("</Image></xml>");
    out
}

/// A push as WeChat would send it, in WeChat's field order: what the simulator, `fission
/// simulate` and the tests post to a callback.
///
/// Events always carry an EventKey element (empty when there is none), as WeChat sends them.
pub fn push_xml(push: &Push) -> String {
    let mut out = String::with_capacity(400);
    push_header(
        &mut out,
        &push.to_user,
        &push.from_user,
        push.create_time,
        &push.msg_type,
    );
    if let Some(event) = &push.event {
        push_cdata_field(&mut out, "Event", event);
        push_cdata_field(
            &mut out,
            "EventKey",
            push.event_key.as_deref().unwrap_or(""),
        );
    } else if let Some(key) = &push.event_key {
        push_cdata_field(&mut out, "EventKey", key);
    }
    if let Some(ticket) = &push.ticket {
        push_cdata_field(&mut out, "Ticket", ticket);
    }
    if let Some(content) = &push.content {
        push_cdata_field(&mut out, "Content", content);
    }
    if let Some(id) = push.msg_id {
        push_number_field(&mut out, "MsgId", id);
    }
    if !push.subscriptions.is_empty() {
        let container = match push.event.as_deref() {
            Some(e) if e.eq_ignore_ascii_case("subscribe_msg_change_event") => {
                "SubscribeMsgChangeEvent"
            }
            _ => "SubscribeMsgPopupEvent",
        };
        out.push_str(&format!("<{container}>"));
        for choice in &push.subscriptions {
            out.push_str("<List>");
            push_cdata_field(&mut out, "TemplateId", &choice.template_id);
            push_cdata_field(&mut out, "SubscribeStatusString", &choice.status);
            if let Some(scene) = &choice.popup_scene {
                push_cdata_field(&mut out, "PopupScene", scene);
            }
            out.push_str("</List>");
        }
        out.push_str(&format!("</{container}>"));
    }
    out.push_str("</xml>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SUBSCRIBE: &str = "<xml><ToUserName><![CDATA[toUser]]></ToUserName><FromUserName><![CDATA[FromUser]]></FromUserName><CreateTime>123456789</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[subscribe]]></Event><EventKey><![CDATA[qrscene_123123]]></EventKey><Ticket><![CDATA[TICKET]]></Ticket></xml>";
    const SCAN: &str = "<xml><ToUserName><![CDATA[toUser]]></ToUserName><FromUserName><![CDATA[FromUser]]></FromUserName><CreateTime>123456789</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[SCAN]]></Event><EventKey><![CDATA[SCENE_VALUE]]></EventKey><Ticket><![CDATA[TICKET]]></Ticket></xml>";

    fn event_push(event: &str, key: Option<&str>) -> Push {
        Push {
            to_user: "gh_account".into(),
            from_user: "oUser123".into(),
            create_time: 1_700_000_000,
            msg_type: "event".into(),
            event: Some(event.into()),
            event_key: key.map(Into::into),
            ticket: None,
            content: None,
            msg_id: None,
            subscriptions: Vec::new(),
        }
    }

    fn parse(xml: &str) -> Push {
        parse_push(xml.as_bytes()).expect("sample parses")
    }

    #[test]
    fn sample_subscribe_push() {
        let p = parse(SUBSCRIBE);
        assert_eq!(p.to_user, "toUser");
        assert_eq!(p.from_user, "FromUser");
        assert_eq!(p.create_time, 123456789);
        assert_eq!(p.msg_type, "event");
        assert_eq!(p.event.as_deref(), Some("subscribe"));
        assert_eq!(p.event_key.as_deref(), Some("qrscene_123123"));
        assert_eq!(p.ticket.as_deref(), Some("TICKET"));
        assert_eq!(p.msg_id, None);
        assert_eq!(
            p.kind(),
            PushKind::Subscribe {
                scene: Some("123123"),
                ticket: Some("TICKET")
            }
        );
    }

    #[test]
    fn sample_scan_push() {
        let p = parse(SCAN);
        assert_eq!(p.event.as_deref(), Some("SCAN"));
        assert_eq!(
            p.kind(),
            PushKind::Scan {
                scene: "SCENE_VALUE",
                ticket: Some("TICKET")
            }
        );
    }

    #[test]
    fn event_names_match_case_insensitively() {
        let p = event_push("Scan", Some("42"));
        assert_eq!(
            p.kind(),
            PushKind::Scan {
                scene: "42",
                ticket: None
            }
        );
        assert_eq!(
            event_push("SUBSCRIBE", None).kind(),
            PushKind::Subscribe {
                scene: None,
                ticket: None
            }
        );
        assert_eq!(
            event_push("UnSubscribe", None).kind(),
            PushKind::Unsubscribe
        );
        assert_eq!(
            event_push("click", Some("MY_POSTER")).kind(),
            PushKind::Click { key: "MY_POSTER" }
        );
    }

    #[test]
    fn plain_subscribe_has_no_scene() {
        let xml = "<xml><ToUserName><![CDATA[gh]]></ToUserName><FromUserName><![CDATA[oU]]></FromUserName><CreateTime>1</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[subscribe]]></Event><EventKey><![CDATA[]]></EventKey></xml>";
        let p = parse(xml);
        assert_eq!(p.event_key, None);
        assert_eq!(
            p.kind(),
            PushKind::Subscribe {
                scene: None,
                ticket: None
            }
        );
        // An empty element form and a missing EventKey mean the same.
        let p = parse(&xml.replace("<EventKey><![CDATA[]]></EventKey>", "<EventKey/>"));
        assert_eq!(p.event_key, None);
        let p = parse(&xml.replace("<EventKey><![CDATA[]]></EventKey>", ""));
        assert_eq!(p.event_key, None);
    }

    #[test]
    fn subscribe_key_without_prefix_is_not_a_scene() {
        assert_eq!(
            event_push("subscribe", Some("123")).kind(),
            PushKind::Subscribe {
                scene: None,
                ticket: None
            }
        );
        assert_eq!(
            event_push("subscribe", Some("qrscene_")).kind(),
            PushKind::Subscribe {
                scene: None,
                ticket: None
            }
        );
    }

    #[test]
    fn unsubscribe_push() {
        let p = parse("<xml><ToUserName><![CDATA[gh]]></ToUserName><FromUserName><![CDATA[oU]]></FromUserName><CreateTime>1</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[unsubscribe]]></Event><EventKey><![CDATA[]]></EventKey></xml>");
        assert_eq!(p.kind(), PushKind::Unsubscribe);
    }

    #[test]
    fn text_push() {
        let p = parse("<xml><ToUserName><![CDATA[gh]]></ToUserName><FromUserName><![CDATA[oU]]></FromUserName><CreateTime>1348831860</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[ 我的海报 ]]></Content><MsgId>1234567890123456</MsgId></xml>");
        assert_eq!(p.msg_id, Some(1234567890123456));
        assert_eq!(
            p.kind(),
            PushKind::Text {
                content: " 我的海报 "
            }
        );
        assert_eq!(p.dedupe_key(), "msg:1234567890123456");
    }

    #[test]
    fn click_push() {
        let p = parse("<xml><ToUserName><![CDATA[gh]]></ToUserName><FromUserName><![CDATA[oU]]></FromUserName><CreateTime>1</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[CLICK]]></Event><EventKey><![CDATA[MY_POSTER]]></EventKey></xml>");
        assert_eq!(p.kind(), PushKind::Click { key: "MY_POSTER" });
    }

    #[test]
    fn other_message_types_are_messages_and_unknown_events_other() {
        let p = parse("<xml><ToUserName><![CDATA[gh]]></ToUserName><FromUserName><![CDATA[oU]]></FromUserName><CreateTime>1</CreateTime><MsgType><![CDATA[location]]></MsgType><Location_X>23.134521</Location_X><Location_Y>113.358803</Location_Y><Scale>20</Scale><Label><![CDATA[somewhere]]></Label><MsgId>1234567890123456</MsgId></xml>");
        assert_eq!(p.kind(), PushKind::Message);
        assert_eq!(
            event_push("VIEW", Some("https://x")).kind(),
            PushKind::Other
        );
    }

    #[test]
    fn subscription_popup_and_change_events_carry_their_list() {
        // The shape of WeChat's documented subscribe_msg_popup_event.
        let xml = "<xml><ToUserName><![CDATA[gh_123456789abc]]></ToUserName><FromUserName><![CDATA[otFpruAK8D-E6EfStSYonYSBZ8_4]]></FromUserName><CreateTime>1610969440</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[subscribe_msg_popup_event]]></Event><SubscribeMsgPopupEvent><List><TemplateId><![CDATA[VRR0UEO9VJOLs0MHlU0OilqX6MVFDwH3_3gz3Oc0NIc]]></TemplateId><SubscribeStatusString><![CDATA[accept]]></SubscribeStatusString><PopupScene>2</PopupScene></List><List><TemplateId><![CDATA[9nLIlbOQZC5Y89AZteFEux3WCXRRRG5Wfzkpssu4bLI]]></TemplateId><SubscribeStatusString><![CDATA[reject]]></SubscribeStatusString><PopupScene>2</PopupScene></List></SubscribeMsgPopupEvent></xml>";
        let p = parse(xml);
        let PushKind::Subscriptions { choices } = p.kind() else {
            panic!("{:?}", p.kind());
        };
        assert_eq!(choices.len(), 2);
        assert_eq!(
            choices[0].template_id,
            "VRR0UEO9VJOLs0MHlU0OilqX6MVFDwH3_3gz3Oc0NIc"
        );
        assert!(choices[0].accepted());
        assert!(!choices[1].accepted());
        assert_eq!(choices[1].popup_scene.as_deref(), Some("2"));
        // What push_xml writes parses back to the same push.
        assert_eq!(parse(&push_xml(&p)), p);

        let change = parse("<xml><ToUserName>gh</ToUserName><FromUserName>oU</FromUserName><CreateTime>2</CreateTime><MsgType>event</MsgType><Event>subscribe_msg_change_event</Event><SubscribeMsgChangeEvent><List><TemplateId>T1</TemplateId><SubscribeStatusString>reject</SubscribeStatusString></List></SubscribeMsgChangeEvent></xml>");
        assert_eq!(change.subscriptions.len(), 1);
        assert_eq!(change.subscriptions[0].popup_scene, None);
        assert_eq!(parse(&push_xml(&change)), change);
        // A List outside the containers is skipped like any nested element.
        let stray = parse("<xml><ToUserName>gh</ToUserName><FromUserName>oU</FromUserName><CreateTime>2</CreateTime><MsgType>event</MsgType><Event>x</Event><Other><List><TemplateId>T</TemplateId><SubscribeStatusString>accept</SubscribeStatusString></List></Other></xml>");
        assert!(stray.subscriptions.is_empty());
    }

    #[test]
    fn nested_elements_are_skipped() {
        let xml = "<xml><ToUserName><![CDATA[gh]]></ToUserName><FromUserName><![CDATA[oU]]></FromUserName><CreateTime>1</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[scancode_push]]></Event><EventKey><![CDATA[k]]></EventKey><ScanCodeInfo><ScanType><![CDATA[qrcode]]></ScanType><ScanResult><![CDATA[1]]></ScanResult><Content>inner</Content><Empty/></ScanCodeInfo><Ticket>T</Ticket></xml>";
        let p = parse(xml);
        assert_eq!(p.content, None);
        assert_eq!(p.event_key.as_deref(), Some("k"));
        assert_eq!(p.ticket.as_deref(), Some("T"));
        assert_eq!(p.kind(), PushKind::Other);
    }

    #[test]
    fn escaped_text_and_char_refs_are_unescaped() {
        let p = parse("<xml><ToUserName>gh</ToUserName><FromUserName>o&amp;U&#65;</FromUserName><CreateTime> 5 </CreateTime><MsgType>text</MsgType><Content>a &lt;b&gt; &quot;&apos;&#x4e2d;</Content></xml>");
        assert_eq!(p.from_user, "o&UA");
        assert_eq!(p.create_time, 5);
        assert_eq!(p.content.as_deref(), Some("a <b> \"'中"));
    }

    #[test]
    fn unknown_entity_is_malformed() {
        let r = parse_push(b"<xml><ToUserName>&xxe;</ToUserName><FromUserName>o</FromUserName><CreateTime>1</CreateTime><MsgType>text</MsgType></xml>");
        assert!(matches!(r, Err(ParseError::Malformed(_))), "{r:?}");
    }

    #[test]
    fn billion_laughs_is_rejected_as_doctype() {
        let xml = r#"<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]>
<xml><ToUserName>&lol3;</ToUserName><FromUserName>o</FromUserName><CreateTime>1</CreateTime><MsgType>text</MsgType></xml>"#;
        assert_eq!(parse_push(xml.as_bytes()), Err(ParseError::Doctype));
        assert_eq!(
            parse_encrypted_envelope(xml.as_bytes()),
            Err(ParseError::Doctype)
        );
        let xxe = r#"<!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><xml><Encrypt>&xxe;</Encrypt></xml>"#;
        assert_eq!(
            parse_encrypted_envelope(xxe.as_bytes()),
            Err(ParseError::Doctype)
        );
    }

    #[test]
    fn oversized_body_is_rejected_before_parsing() {
        let mut body = SUBSCRIBE.as_bytes().to_vec();
        body.resize(1024 * 1024, b' ');
        assert_eq!(parse_push(&body), Err(ParseError::TooLarge));
        // Even unparseable bytes report the size first.
        assert_eq!(
            parse_push(&vec![0xff; MAX_BODY_BYTES + 1]),
            Err(ParseError::TooLarge)
        );
        let mut at_limit = SUBSCRIBE.as_bytes().to_vec();
        at_limit.resize(MAX_BODY_BYTES, b' ');
        assert!(parse_push(&at_limit).is_ok());
    }

    #[test]
    fn missing_and_invalid_required_fields() {
        let no_from = SUBSCRIBE.replace("<FromUserName><![CDATA[FromUser]]></FromUserName>", "");
        assert_eq!(
            parse_push(no_from.as_bytes()),
            Err(ParseError::Missing("FromUserName"))
        );
        let no_type = SUBSCRIBE.replace("<MsgType><![CDATA[event]]></MsgType>", "");
        assert_eq!(
            parse_push(no_type.as_bytes()),
            Err(ParseError::Missing("MsgType"))
        );
        let bad_time = SUBSCRIBE.replace("123456789", "12x");
        assert_eq!(
            parse_push(bad_time.as_bytes()),
            Err(ParseError::Invalid("CreateTime"))
        );
        let big_time = SUBSCRIBE.replace("123456789", "99999999999999999999");
        assert_eq!(
            parse_push(big_time.as_bytes()),
            Err(ParseError::Invalid("CreateTime"))
        );
        let empty_from = SUBSCRIBE.replace("FromUser]]", "]]");
        assert_eq!(
            parse_push(empty_from.as_bytes()),
            Err(ParseError::Invalid("FromUserName"))
        );
        let bad_msg_id = SUBSCRIBE.replace("</xml>", "<MsgId>abc</MsgId></xml>");
        assert_eq!(
            parse_push(bad_msg_id.as_bytes()),
            Err(ParseError::Invalid("MsgId"))
        );
    }

    #[test]
    fn garbage_is_malformed() {
        for body in [
            &b"this is not xml"[..],
            b"",
            b"<xml><ToUserName>a</FromUserName></xml>",
            b"<xml><ToUserName>a</ToUserName>",
            b"<other><ToUserName>a</ToUserName></other>",
            b"<xml></xml><xml></xml>",
            b"\xff\xfe<xml/>",
            b"<xml><ToUserName>a &amp</ToUserName></xml>",
            b"<xml><ToUserName>a</ToUserName><ToUserName>b</ToUserName></xml>",
        ] {
            let r = parse_push(body);
            assert!(
                matches!(r, Err(ParseError::Malformed(_))),
                "{body:?}: {r:?}"
            );
        }
    }

    #[test]
    fn mutated_bodies_never_panic() {
        use rand::rngs::StdRng;
        use rand::{Rng, SeedableRng};
        let mut rng = StdRng::seed_from_u64(7);
        let seed = SUBSCRIBE.as_bytes();
        for _ in 0..5000 {
            let mut body = seed.to_vec();
            for _ in 0..rng.gen_range(1..8) {
                let i = rng.gen_range(0..body.len());
                match rng.gen_range(0..3) {
                    0 => body[i] = rng.gen(),
                    1 => {
                        body.remove(i);
                    }
                    _ => body.insert(i, b"<>&;/![]"[rng.gen_range(0..8)]),
                }
            }
            let _ = parse_push(&body);
            let _ = parse_encrypted_envelope(&body);
        }
    }

    #[test]
    fn encrypted_envelope() {
        let xml = b"<xml><ToUserName><![CDATA[gh_1]]></ToUserName><Encrypt><![CDATA[abc+/=]]></Encrypt></xml>";
        assert_eq!(parse_encrypted_envelope(xml), Ok("abc+/=".to_owned()));
        assert_eq!(
            parse_encrypted_envelope(b"<xml><Encrypt>abc</Encrypt></xml>"),
            Ok("abc".to_owned())
        );
        assert_eq!(
            parse_encrypted_envelope(b"<xml><ToUserName>gh</ToUserName></xml>"),
            Err(ParseError::Missing("Encrypt"))
        );
    }

    #[test]
    fn push_xml_round_trips() {
        let mut subscribe = event_push("subscribe", Some("qrscene_inv_42"));
        subscribe.ticket = Some("gQH47joAAAAAAAAAASxodHRwOi8vd2Vp+/=".into());
        let plain = event_push("subscribe", None);
        let text = Push {
            msg_type: "text".into(),
            event: None,
            content: Some("hello ]]> <b>&amp; 中文".into()),
            msg_id: Some(-7),
            subscriptions: Vec::new(),
            ..event_push("x", None)
        };
        for p in [subscribe, plain, text, event_push("CLICK", Some("K"))] {
            assert_eq!(parse_push(push_xml(&p).as_bytes()), Ok(p.clone()));
        }
        // The sample push comes back byte for byte.
        assert_eq!(push_xml(&parse(SUBSCRIBE)), SUBSCRIBE);
    }

    #[test]
    fn text_reply_is_cdata_safe() {
        let content = "a]]>b]]]]>c<![CDATA[d";
        let reply = text_reply("oUser", "gh_acct", 1_700_000_000, content);
        assert!(reply.contains("<CreateTime>1700000000</CreateTime>"));
        let p = parse(&reply);
        assert_eq!(p.content.as_deref(), Some(content));
        assert_eq!(p.to_user, "oUser");
        assert_eq!(p.from_user, "gh_acct");
        assert_eq!(p.kind(), PushKind::Text { content });
    }

    #[test]
    fn image_reply_shape() {
        let reply = image_reply("oUser", "gh_acct", 12, "MEDIA_ID");
        assert_eq!(
            reply,
            "<xml><ToUserName><![CDATA[oUser]]></ToUserName><FromUserName><![CDATA[gh_acct]]></FromUserName><CreateTime>12</CreateTime><MsgType><![CDATA[image]]></MsgType><Image><MediaId><![CDATA[MEDIA_ID]]></MediaId></Image></xml>"
        );
        assert_eq!(parse(&reply).msg_type, "image");
    }

    #[test]
    fn dedupe_key_is_stable_and_discriminating() {
        let a = event_push("subscribe", Some("qrscene_1"));
        assert_eq!(a.dedupe_key(), a.clone().dedupe_key());
        assert_eq!(
            a.dedupe_key(),
            parse_push(push_xml(&a).as_bytes())
                .expect("round trip")
                .dedupe_key()
        );
        assert_eq!(a.dedupe_key(), "ev:oUser123:1700000000:subscribe:qrscene_1");

        let later = Push {
            create_time: a.create_time + 1,
            ..a.clone()
        };
        assert_ne!(a.dedupe_key(), later.dedupe_key());
        let other_key = event_push("subscribe", Some("qrscene_2"));
        assert_ne!(a.dedupe_key(), other_key.dedupe_key());
        let plain = event_push("subscribe", None);
        assert_ne!(a.dedupe_key(), plain.dedupe_key());
        assert_eq!(plain.dedupe_key(), "ev:oUser123:1700000000:subscribe:");
    }
}
