//! Risk review: the queue of flagged, held and blocked inviters with bulk decisions, one
//! inviter's evidence (signals, the timeline of their credits, how many friends left) and the
//! decisions recorded about them, and a campaign's risk policy.

use std::collections::BTreeSet;

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use askama::Template;
use serde::Deserialize;

use super::frame::Frame;
use crate::db;
use crate::db::risk::{DecisionRow, PolicyRow, QueueRow, SignalRow, Standing, TimelineRow};
use crate::domain::{CampaignId, OpenId, RiskAction, RiskPolicy};
use crate::error::AppError;
use crate::referral::review::{self, Reviewed};
use crate::routes::layout::{render, Layout};
use crate::state::AppState;

const QUEUE_SIZE: i64 = 200;
const TIMELINE_SIZE: i64 = 200;

/// The message key of a status (`risk.status.held`).
pub fn status_key(status: &str) -> &'static str {
    match status {
        "flagged" => "risk.status.flagged",
        "held" => "risk.status.held",
        "blocked" => "risk.status.blocked",
        _ => "risk.status.ok",
    }
}

/// The message key of a signal's name.
pub fn signal_key(name: &str) -> &'static str {
    match name {
        crate::referral::risk::PER_MINUTE => "risk.signal.credits_per_minute",
        crate::referral::risk::PER_HOUR => "risk.signal.credits_per_hour",
        crate::referral::risk::FRIENDS_LEFT => "risk.signal.friends_left_percent",
        crate::referral::risk::FRIENDS_SILENT => "risk.signal.friends_silent_percent",
        crate::referral::risk::CHAIN => "risk.signal.chain_burst",
        crate::referral::risk::SCENE_BURST => "risk.signal.scene_burst",
        _ => "risk.signal.other",
    }
}

/// The message key of a policy.
pub fn policy_key(policy: &str) -> &'static str {
    match policy {
        "hold" => "risk.policy.hold",
        "block" => "risk.policy.block",
        _ => "risk.policy.flag",
    }
}

/// The message key of a decision.
pub fn action_key(action: &str) -> &'static str {
    match action {
        "flag" => "risk.action.flag",
        "hold" => "risk.action.hold",
        "block" => "risk.action.block",
        "approve" => "risk.action.approve",
        "reject" => "risk.action.reject",
        _ => "risk.action.unblock",
    }
}

#[derive(Template)]
#[template(path = "admin/risk.html")]
struct QueuePage {
    layout: Layout,
    f: Frame,
    rows: Vec<QueueRow>,
    done: Option<String>,
}

impl QueuePage {
    fn signal_names(&self, raw: &str) -> Vec<&'static str> {
        raw.split_whitespace().map(signal_key).collect()
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct QueueQuery {
    /// How many decisions the last bulk action made / skipped (shown once).
    pub done: Option<u32>,
    pub skipped: Option<u32>,
}

pub async fn queue(
    state: web::Data<AppState>,
    f: Frame,
    q: web::Query<QueueQuery>,
) -> Result<HttpResponse, AppError> {
    let done = q.done.map(|n| {
        format!(
            "{} {n} · {} {}",
            f.t("risk.done"),
            f.t("risk.skipped"),
            q.skipped.unwrap_or(0)
        )
    });
    render(&QueuePage {
        layout: Layout::of(&state),
        rows: db::risk::queue(&state.pool, QUEUE_SIZE).await?,
        f: f.with_section("risk"),
        done,
    })
}

/// Parses `campaign:openid` (a checkbox's value).
fn pick(raw: &str) -> Option<(CampaignId, OpenId)> {
    let (campaign, openid) = raw.split_once(':')?;
    Some((
        CampaignId(campaign.parse().ok()?),
        OpenId::parse(openid).ok()?,
    ))
}

/// One decision for every picked inviter (`pick` repeats); back to the queue, or to the
/// inviter's page when it was decided there.
pub async fn decide(
    state: web::Data<AppState>,
    f: Frame,
    form: web::Form<Vec<(String, String)>>,
) -> Result<HttpResponse, AppError> {
    let action = field(&form, "action")
        .and_then(RiskAction::parse)
        .ok_or_else(|| AppError::BadRequest("choose a decision".into()))?;
    let picks: BTreeSet<(i64, String)> = form
        .iter()
        .filter(|(k, _)| k == "pick")
        .map(|(_, v)| pick(v).ok_or_else(|| AppError::BadRequest("unknown inviter".into())))
        .map(|p| p.map(|(c, o)| (c.0, o.to_string())))
        .collect::<Result<_, _>>()?;
    if picks.is_empty() {
        return Err(AppError::BadRequest("pick at least one inviter".into()));
    }
    let (mut done, mut skipped) = (0, 0);
    for (campaign, openid) in &picks {
        let openid = OpenId::parse(openid)?;
        match review::decide(&state.pool, CampaignId(*campaign), &openid, action, &f.user).await? {
            Reviewed::Done(_) => done += 1,
            Reviewed::NotApplicable => skipped += 1,
        }
    }
    let location = match (field(&form, "back"), picks.iter().next()) {
        (Some("inviter"), Some((campaign, openid))) if picks.len() == 1 => {
            format!("/admin/risk/{campaign}/{}", urlencoding(openid))
        }
        _ => format!("/admin/risk?done={done}&skipped={skipped}"),
    };
    Ok(HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location))
        .finish())
}

/// The first value of a form field.
fn field<'a>(form: &'a [(String, String)], name: &str) -> Option<&'a str> {
    form.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Openids are `[A-Za-z0-9_-]`; anything else is escaped anyway.
fn urlencoding(raw: &str) -> String {
    serde_urlencoded::to_string([("", raw)])
        .map(|s| s.trim_start_matches('=').to_string())
        .unwrap_or_default()
}

#[derive(Template)]
#[template(path = "admin/risk_inviter.html")]
struct InviterPage {
    layout: Layout,
    f: Frame,
    campaign: db::campaigns::Campaign,
    openid: String,
    nickname: Option<String>,
    standing: Option<Standing>,
    invites: i32,
    signals: Vec<SignalRow>,
    timeline: Vec<TimelineRow>,
    decisions: Vec<DecisionRow>,
    waiting: Vec<String>,
    /// Friends who never interacted after following, of all friends.
    silent: (i64, i64),
}

impl InviterPage {
    fn status(&self) -> &str {
        self.standing.as_ref().map_or("ok", |s| s.status.as_str())
    }

    /// Friends who left within the revoke window, as a percentage of all friends.
    fn left_percent(&self) -> String {
        match &self.standing {
            Some(s) if s.friends > 0 => {
                format!(
                    "{:.0}%",
                    f64::from(s.friends_left) * 100.0 / f64::from(s.friends)
                )
            }
            _ => "—".into(),
        }
    }

    fn can(&self, action: &str) -> bool {
        let current = crate::domain::RiskStatus::parse(self.status())
            .unwrap_or(crate::domain::RiskStatus::Ok);
        RiskAction::parse(action).is_some_and(|a| crate::referral::risk::allowed(current, a))
    }
}

pub async fn inviter(
    state: web::Data<AppState>,
    f: Frame,
    path: web::Path<(i64, String)>,
) -> Result<HttpResponse, AppError> {
    let (campaign_id, openid) = path.into_inner();
    let openid = OpenId::parse(&openid)?;
    let campaign = db::campaigns::get(&state.pool, campaign_id)
        .await?
        .ok_or_else(|| AppError::NotFound("no such campaign".into()))?;
    let id = openid.as_str();
    render(&InviterPage {
        layout: Layout::of(&state),
        nickname: db::users::nickname(&state.pool, id).await?,
        standing: db::risk::standing(&state.pool, campaign_id, id).await?,
        invites: db::referrals::invites_of(&state.pool, campaign_id, &openid).await?,
        signals: db::risk::signals_of(&state.pool, Some(campaign_id), id).await?,
        timeline: db::risk::timeline(&state.pool, campaign_id, id, TIMELINE_SIZE).await?,
        decisions: db::risk::decisions_of(&state.pool, Some(campaign_id), id).await?,
        waiting: db::risk::waiting_tiers(&state.pool, campaign_id, id).await?,
        silent: db::risk::silent_friends(&state.pool, campaign_id, id).await?,
        f: f.with_section("risk"),
        campaign,
        openid: id.to_string(),
    })
}

#[derive(Template)]
#[template(path = "admin/risk_policy.html")]
struct PolicyPage {
    layout: Layout,
    f: Frame,
    campaign: db::campaigns::Campaign,
    form: PolicyForm,
    error: bool,
}

impl PolicyPage {
    fn chosen(&self, policy: &str) -> bool {
        self.form.risk_policy == policy
    }

    fn policies(&self) -> [&'static str; 3] {
        RiskPolicy::ALL.map(RiskPolicy::as_str)
    }
}

/// A campaign's risk policy as typed.
#[derive(Debug, Clone, Deserialize)]
pub struct PolicyForm {
    pub risk_policy: String,
    pub risk_per_minute: String,
    pub risk_per_hour: String,
    pub risk_left_percent: String,
    pub risk_left_min_friends: String,
    pub risk_block_per_minute: String,
    pub block_text: String,
    /// Absent from older forms: rewards at once.
    #[serde(default)]
    pub reward_delay_days: String,
    /// Absent from older forms: off.
    #[serde(default)]
    pub risk_silent_percent: String,
    /// Absent from older forms: off.
    #[serde(default)]
    pub risk_burst_min: String,
    /// Absent from older forms: the default, 80 %.
    #[serde(default)]
    pub risk_burst_percent: String,
}

impl PolicyForm {
    fn of(p: &PolicyRow) -> PolicyForm {
        PolicyForm {
            risk_policy: p.risk_policy.clone(),
            risk_per_minute: p.risk_per_minute.to_string(),
            risk_per_hour: p.risk_per_hour.to_string(),
            risk_left_percent: p.risk_left_percent.to_string(),
            risk_left_min_friends: p.risk_left_min_friends.to_string(),
            risk_block_per_minute: p.risk_block_per_minute.to_string(),
            block_text: p.block_text.clone(),
            reward_delay_days: p.reward_delay_days.to_string(),
            risk_silent_percent: p.risk_silent_percent.to_string(),
            risk_burst_min: p.risk_burst_min.to_string(),
            risk_burst_percent: p.risk_burst_percent.to_string(),
        }
    }

    /// Thresholds within what the counters can see (1..=100 credits), text at most 600 chars,
    /// a reward delay of 0..=90 days (empty = 0), a silent share of 0..=100 % (empty or 0 = off),
    /// a scene burst of 0..=100 credits (empty or 0 = off) making 1..=100 % of the account's
    /// follows (empty = 80).
    fn validate(&self) -> Option<PolicyRow> {
        let n = |raw: &str, max: i32| {
            raw.trim()
                .parse::<i32>()
                .ok()
                .filter(|v| (1..=max).contains(v))
        };
        let text = self.block_text.trim();
        Some(PolicyRow {
            risk_policy: RiskPolicy::parse(self.risk_policy.trim())?
                .as_str()
                .to_string(),
            risk_per_minute: n(&self.risk_per_minute, 100)?,
            risk_per_hour: n(&self.risk_per_hour, 100)?,
            risk_left_percent: n(&self.risk_left_percent, 100)?,
            risk_left_min_friends: n(&self.risk_left_min_friends, 1_000_000)?,
            risk_block_per_minute: n(&self.risk_block_per_minute, 100)?,
            block_text: (text.chars().count() <= 600).then(|| text.to_string())?,
            reward_delay_days: match self.reward_delay_days.trim() {
                "" => 0,
                raw => raw.parse::<i32>().ok().filter(|d| (0..=90).contains(d))?,
            },
            // Empty or 0: the silent-friends signal is off.
            risk_silent_percent: match self.risk_silent_percent.trim() {
                "" => 0,
                raw => raw.parse::<i32>().ok().filter(|v| (0..=100).contains(v))?,
            },
            risk_burst_min: match self.risk_burst_min.trim() {
                "" => 0,
                raw => raw.parse::<i32>().ok().filter(|v| (0..=100).contains(v))?,
            },
            risk_burst_percent: match self.risk_burst_percent.trim() {
                "" => crate::referral::risk::Thresholds::default().burst_percent,
                raw => n(raw, 100)?,
            },
        })
    }
}

async fn campaign_and_policy(
    state: &AppState,
    id: i64,
) -> Result<(db::campaigns::Campaign, PolicyRow), AppError> {
    let campaign = db::campaigns::get(&state.pool, id)
        .await?
        .ok_or_else(|| AppError::NotFound("no such campaign".into()))?;
    let policy = db::risk::policy(&state.pool, id)
        .await?
        .ok_or_else(|| AppError::NotFound("no such campaign".into()))?;
    Ok((campaign, policy))
}

pub async fn policy_form(
    state: web::Data<AppState>,
    f: Frame,
    id: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    let (campaign, policy) = campaign_and_policy(&state, *id).await?;
    render(&PolicyPage {
        layout: Layout::of(&state),
        f: f.with_section("campaigns"),
        campaign,
        form: PolicyForm::of(&policy),
        error: false,
    })
}

pub async fn save_policy(
    state: web::Data<AppState>,
    f: Frame,
    id: web::Path<i64>,
    form: web::Form<PolicyForm>,
) -> Result<HttpResponse, AppError> {
    let (campaign, _) = campaign_and_policy(&state, *id).await?;
    let form = form.into_inner();
    let Some(policy) = form.validate() else {
        let mut response = render(&PolicyPage {
            layout: Layout::of(&state),
            f: f.with_section("campaigns"),
            campaign,
            form,
            error: true,
        })?;
        *response.status_mut() = actix_web::http::StatusCode::BAD_REQUEST;
        return Ok(response);
    };
    db::risk::set_policy(&state.pool, *id, &policy).await?;
    Ok(HttpResponse::SeeOther()
        .insert_header((header::LOCATION, format!("/admin/campaigns/{}", *id)))
        .finish())
}
