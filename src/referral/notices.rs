//! Telling an inviter what their invitations brought, under WeChat's message rules: everything
//! they have not been told yet goes out as ONE notice (credits coalesced, rewards first), by the
//! best channel open to them — a customer-service message while their allowance lasts, else a
//! subscription notice they accepted, else the campaign's category template, else nothing
//! until they next act (the invite page shows it meanwhile). Pure: the worker in
//! `jobs::notices` reads the facts, asks here, sends and records.

use std::collections::BTreeMap;

pub use crate::domain::NoticeTexts;
use crate::referral::texts::fill;
use crate::wechat::allowance::Allowance;

/// Placeholders an operator may use in the texts and field mappings of notices.
pub const PLACEHOLDERS: [&str; 6] = ["invitee", "friends", "count", "next", "reward", "time"];

/// What one campaign has for the inviter since the last notice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CampaignNews {
    /// Friends credited (and still counted) since the last notice.
    pub new_friends: i32,
    /// The nickname of the latest of them, when they shared it.
    pub latest_friend: Option<String>,
    /// The inviter's count now.
    pub total: i32,
    /// The next tier above `total`: (invites still needed, reward name).
    pub next: Option<(i32, String)>,
    /// Rewards granted since the last notice, in the order reached.
    pub rewards: Vec<RewardNews>,
    pub texts: NoticeTexts,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RewardNews {
    pub name: String,
    pub code: Option<String>,
    /// The tier's code pool was empty: staff will get in touch.
    pub out_of_stock: bool,
}

/// How the follower can be reached right now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reach {
    pub following: bool,
    pub allowance: Allowance,
    /// Subscription templates the follower accepted and Fission has not used yet.
    pub accepted: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Channel {
    /// `message/custom/send` with this text.
    Custom(String),
    /// `message/subscribe/bizsend`.
    Subscription {
        template_id: String,
        data: BTreeMap<String, String>,
    },
    /// `message/template/send`.
    Template {
        template_id: String,
        data: BTreeMap<String, String>,
    },
    /// No channel is open: wait for the follower's next message, scan or click.
    Wait,
}

impl Channel {
    /// The name the message log and the dashboard use.
    pub fn name(&self) -> &'static str {
        match self {
            Channel::Custom(_) => "custom",
            Channel::Subscription { .. } => "subscription",
            Channel::Template { .. } => "template",
            Channel::Wait => "waiting",
        }
    }
}

/// Picks the channel for `news` (the most important campaign first) and writes the notice for
/// it. `now` is unix seconds. Channels already refused by WeChat this round are in `closed`.
pub fn plan(news: &[CampaignNews], reach: &Reach, now: i64, closed: &[&str]) -> Channel {
    let Some(lead) = news.first() else {
        return Channel::Wait;
    };
    let open = |name: &str| !closed.contains(&name);
    if reach.following && open("custom") && reach.allowance.check(now).is_ok() {
        return Channel::Custom(text(news));
    }
    if !reach.following {
        return Channel::Wait;
    }
    if let Some(id) = &lead.texts.subscribe_template_id {
        if open("subscription") && reach.accepted.iter().any(|a| a == id) {
            if let Ok(data) = fields(&lead.texts.subscribe_fields, lead, now) {
                return Channel::Subscription {
                    template_id: id.clone(),
                    data,
                };
            }
        }
    }
    if let Some(id) = &lead.texts.template_id {
        if open("template") {
            if let Ok(data) = fields(&lead.texts.template_fields, lead, now) {
                return Channel::Template {
                    template_id: id.clone(),
                    data,
                };
            }
        }
    }
    Channel::Wait
}

/// The customer-service text: rewards first (what matters most), then the friends.
pub fn text(news: &[CampaignNews]) -> String {
    let mut lines = Vec::new();
    for n in news {
        for reward in &n.rewards {
            let code_line = match (&reward.code, reward.out_of_stock) {
                (Some(code), _) => format!("兑换码：{code}"),
                (None, true) => "奖励码已发完，工作人员会尽快与你联系。".to_string(),
                (None, false) => String::new(),
            };
            lines.push(fill(
                &n.texts.reward_text,
                &[
                    ("count", &n.total.to_string()),
                    ("reward", &reward.name),
                    ("code", &code_line),
                ],
            ));
        }
        if n.new_friends > 0 {
            lines.push(fill(
                &n.texts.credit_text,
                &[
                    ("invitee", &friends_phrase(n)),
                    ("friends", &n.new_friends.to_string()),
                    ("count", &n.total.to_string()),
                    ("next", &next_phrase(n)),
                ],
            ));
        }
    }
    lines.join("\n")
}

/// "小红", "一位新朋友", "小红等 3 位好友", "3 位好友".
fn friends_phrase(n: &CampaignNews) -> String {
    match (n.new_friends, &n.latest_friend) {
        (1, Some(name)) => name.clone(),
        (1, None) => "一位新朋友".to_string(),
        (k, Some(name)) => format!("{name}等 {k} 位好友"),
        (k, None) => format!("{k} 位好友"),
    }
}

fn next_phrase(n: &CampaignNews) -> String {
    n.next
        .as_ref()
        .map(|(more, name)| format!("再邀请 {more} 位即可获得「{name}」。"))
        .unwrap_or_default()
}

/// A field mapping as the operator wrote it: one `keyword={placeholders}` per line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldMapping(pub Vec<(String, String)>);

/// Why a field mapping cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MappingError {
    #[error("line {0}: write keyword=value, e.g. thing1={{invitee}}")]
    Shape(usize),
    #[error("line {0}: {1:?} is not a template keyword (thing1, number2, time3, phrase4, character_string5, name6, amount7, date8)")]
    Keyword(usize, String),
    #[error("line {0}: unknown placeholder {{{1}}}; use {{invitee}}, {{friends}}, {{count}}, {{next}}, {{reward}} or {{time}}")]
    Placeholder(usize, String),
    #[error("keyword {0} is mapped twice")]
    Twice(String),
    #[error("no fields are mapped")]
    Empty,
}

/// Parses and checks a mapping (the campaign form calls this before saving).
pub fn parse_mapping(text: &str) -> Result<FieldMapping, MappingError> {
    let mut fields: Vec<(String, String)> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let no = n + 1;
        let (key, value) = line
            .split_once('=')
            .or_else(|| line.split_once('：'))
            .or_else(|| line.split_once(':'))
            .ok_or(MappingError::Shape(no))?;
        let (key, value) = (key.trim(), value.trim());
        if keyword_kind(key).is_none() {
            return Err(MappingError::Keyword(no, key.to_string()));
        }
        for placeholder in placeholders_in(value) {
            if !PLACEHOLDERS.contains(&placeholder) {
                return Err(MappingError::Placeholder(no, placeholder.to_string()));
            }
        }
        if fields.iter().any(|(k, _)| k == key) {
            return Err(MappingError::Twice(key.to_string()));
        }
        fields.push((key.to_string(), value.to_string()));
    }
    if fields.is_empty() {
        return Err(MappingError::Empty);
    }
    Ok(FieldMapping(fields))
}

fn placeholders_in(value: &str) -> impl Iterator<Item = &str> {
    value
        .split('{')
        .skip(1)
        .filter_map(|part| part.split_once('}').map(|(name, _)| name))
}

/// The keyword's type ("thing" for "thing1"), if it is one WeChat's templates use.
pub fn keyword_kind(key: &str) -> Option<&'static str> {
    const KINDS: [&str; 8] = [
        "character_string",
        "thing",
        "number",
        "time",
        "phrase",
        "name",
        "amount",
        "date",
    ];
    KINDS.into_iter().find(|kind| {
        key.strip_prefix(kind)
            .is_some_and(|n| !n.is_empty() && n.len() <= 2 && n.bytes().all(|b| b.is_ascii_digit()))
    })
}

/// The longest value WeChat takes for a keyword of this type (characters).
pub fn keyword_limit(kind: &str) -> usize {
    match kind {
        "thing" => 20,
        "phrase" => 5,
        "name" => 10,
        _ => 32,
    }
}

/// The template's data for `news`: each mapped keyword filled and cut to its type's limit.
pub fn fields(
    mapping: &str,
    news: &CampaignNews,
    now: i64,
) -> Result<BTreeMap<String, String>, MappingError> {
    let mapping = parse_mapping(mapping)?;
    let time = chrono::DateTime::from_timestamp(now, 0)
        .map(|t| {
            t.with_timezone(&crate::domain::time::china())
                .format("%Y-%m-%d %H:%M")
                .to_string()
        })
        .unwrap_or_default();
    let reward = news
        .rewards
        .first()
        .map(|r| r.name.clone())
        .unwrap_or_default();
    let next = match next_phrase(news) {
        none if none.is_empty() => "继续邀请，排名更靠前".to_string(),
        next => next,
    };
    let values = [
        ("invitee", friends_phrase(news)),
        ("friends", news.new_friends.to_string()),
        ("count", news.total.to_string()),
        ("next", next),
        ("reward", reward),
        ("time", time),
    ];
    let pairs: Vec<(&str, &str)> = values.iter().map(|(k, v)| (*k, v.as_str())).collect();
    Ok(mapping
        .0
        .into_iter()
        .map(|(key, template)| {
            let kind = keyword_kind(&key).unwrap_or("thing");
            let mut value = fill(&template, &pairs);
            if kind == "number" {
                value.retain(|c| c.is_ascii_digit() || c == '.');
            }
            let value: String = value.trim().chars().take(keyword_limit(kind)).collect();
            // WeChat refuses an empty keyword.
            let value = match (value.is_empty(), kind) {
                (false, _) => value,
                (true, "number" | "amount") => "0".to_string(),
                (true, _) => "-".to_string(),
            };
            (key, value)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wechat::allowance::Opener;

    fn news(friends: i32, name: Option<&str>) -> CampaignNews {
        CampaignNews {
            new_friends: friends,
            latest_friend: name.map(str::to_string),
            total: 12,
            next: Some((3, "贴纸".into())),
            rewards: Vec::new(),
            texts: NoticeTexts {
                credit_text: "{invitee}通过你的邀请关注了公众号，你已邀请 {count} 位好友。{next}"
                    .into(),
                reward_text: "恭喜获得{reward}。{code}".into(),
                ..NoticeTexts::default()
            },
        }
    }

    fn reach(allowance: Allowance, accepted: &[&str]) -> Reach {
        Reach {
            following: true,
            allowance,
            accepted: accepted.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn credits_are_coalesced_into_one_text_with_the_total() {
        assert_eq!(
            text(&[news(3, Some("小红"))]),
            "小红等 3 位好友通过你的邀请关注了公众号，你已邀请 12 位好友。再邀请 3 位即可获得「贴纸」。"
        );
        assert!(text(&[news(1, None)]).starts_with("一位新朋友通过"));
        assert!(text(&[news(2, None)]).starts_with("2 位好友通过"));
        let mut won = news(1, Some("小明"));
        won.rewards.push(RewardNews {
            name: "贴纸".into(),
            code: Some("C-1".into()),
            out_of_stock: false,
        });
        let t = text(&[won]);
        assert!(t.starts_with("恭喜获得贴纸。兑换码：C-1\n小明通过"), "{t}");
    }

    #[test]
    fn the_channel_follows_what_is_open() {
        let open = Allowance::default().opened(Opener::Message, 1000);
        let n = [news(1, None)];
        assert!(matches!(
            plan(&n, &reach(open, &[]), 1001, &[]),
            Channel::Custom(_)
        ));
        // Allowance spent or expired: a subscription the follower accepted, else the
        // template, else wait.
        let mut with_channels = n.clone();
        with_channels[0].texts.subscribe_template_id = Some("SUB".into());
        with_channels[0].texts.subscribe_fields = "thing1={invitee}\nnumber2={count}".into();
        with_channels[0].texts.template_id = Some("TPL".into());
        with_channels[0].texts.template_fields = "thing1={invitee}".into();
        let late = 1000 + 49 * 3600;
        let Channel::Subscription { template_id, data } =
            plan(&with_channels, &reach(open, &["SUB"]), late, &[])
        else {
            panic!("expected a subscription notice");
        };
        assert_eq!(template_id, "SUB");
        assert_eq!(data["number2"], "12");
        assert!(matches!(
            plan(&with_channels, &reach(open, &[]), late, &[]),
            Channel::Template { .. }
        ));
        assert_eq!(plan(&n, &reach(open, &[]), late, &[]), Channel::Wait);
        // WeChat refused the customer-service message after all: the next channel.
        assert!(matches!(
            plan(&with_channels, &reach(open, &[]), 1001, &["custom"]),
            Channel::Template { .. }
        ));
        // Someone who left gets nothing.
        let mut gone = reach(open, &["SUB"]);
        gone.following = false;
        assert_eq!(plan(&with_channels, &gone, 1001, &[]), Channel::Wait);
    }

    #[test]
    fn mappings_are_checked_and_values_fit_their_keyword() {
        assert!(parse_mapping("thing1={invitee}\nnumber2: {count}").is_ok());
        assert_eq!(parse_mapping(""), Err(MappingError::Empty));
        assert_eq!(
            parse_mapping("first={invitee}"),
            Err(MappingError::Keyword(1, "first".into()))
        );
        assert_eq!(
            parse_mapping("thing1={inviter}"),
            Err(MappingError::Placeholder(1, "inviter".into()))
        );
        assert_eq!(
            parse_mapping("thing1=a\nthing1=b"),
            Err(MappingError::Twice("thing1".into()))
        );
        assert_eq!(parse_mapping("thing1"), Err(MappingError::Shape(1)));
        let mut long = news(1, Some("一个名字非常非常非常非常非常非常长的好友"));
        long.total = 7;
        let data = fields(
            "thing1={invitee}\nnumber2=共{count}位\ntime3={time}",
            &long,
            0,
        )
        .unwrap();
        assert_eq!(data["thing1"].chars().count(), 20);
        assert_eq!(data["number2"], "7");
        assert_eq!(data["time3"], "1970-01-01 08:00");
    }
}
