//! Campaigns: the list, and one form for creating and editing (texts, dates, reward tiers,
//! poster layout). A failed submit answers 422 with everything typed and an error per field.

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpResponse};
use askama::Template;
use chrono::Utc;
use serde::Deserialize;

use super::campaign_form::{CampaignForm, Errors};
use super::frame::Frame;
use crate::db;
use crate::db::campaign_edit::{Period, SaveError, TierSummary};
use crate::db::campaigns::Campaign;
use crate::error::AppError;
use crate::referral;
use crate::routes::layout::{render, Layout};
use crate::state::AppState;

#[derive(Template)]
#[template(path = "admin/campaigns.html")]
struct ListPage {
    layout: Layout,
    f: Frame,
    campaigns: Vec<(Campaign, &'static str)>,
}

/// A tier as the edit page lists it, with its code pool.
pub struct TierView {
    pub tier: TierSummary,
    pub stock: i64,
}

#[derive(Template)]
#[template(path = "admin/campaign_edit.html")]
struct EditPage {
    layout: Layout,
    f: Frame,
    /// `None` while creating.
    id: Option<i64>,
    form: CampaignForm,
    errors: Errors,
    tiers: Vec<TierView>,
    background: Option<String>,
    notice: Option<&'static str>,
    /// The campaign whose period this one's would share, when that refused the save.
    overlap: Option<Period>,
    /// A running campaign other than the default: it can be ended from here.
    can_end: bool,
    /// The campaign's risk policy (edited on its own page).
    risk: Option<db::risk::PolicyRow>,
}

#[derive(Template)]
#[template(path = "admin/campaign_end.html")]
struct EndPage {
    layout: Layout,
    f: Frame,
    campaign: Campaign,
    /// The campaign followers see once this one ends, if any runs then.
    next: Option<Campaign>,
}

impl EditPage {
    fn error(&self, field: &str) -> Option<&'static str> {
        self.errors.get(field).copied()
    }

    fn tier_error(&self, index: &usize) -> Option<&'static str> {
        self.errors.get(&format!("tier_{index}")).copied()
    }

    fn pool_error(&self, tier: &i64) -> Option<&'static str> {
        self.errors.get(&format!("codes_{tier}")).copied()
    }
}

/// Where a campaign stands now. `running` is the id of the campaign that runs: a default
/// campaign within its dates stands by while another runs.
fn status_key(c: &Campaign, running: Option<i64>) -> &'static str {
    let now = Utc::now();
    if c.starts_at > now {
        "campaign.upcoming"
    } else if c.ends_at.is_some_and(|end| end <= now) {
        "campaign.ended"
    } else if running.is_some_and(|id| id != c.id) {
        "campaign.standby"
    } else {
        "campaign.running"
    }
}

pub async fn list(state: web::Data<AppState>, f: Frame) -> Result<HttpResponse, AppError> {
    let running = db::campaigns::active_at(&state.pool, Utc::now())
        .await?
        .map(|c| c.id);
    let campaigns = db::campaigns::list(&state.pool)
        .await?
        .into_iter()
        .map(|c| {
            let status = status_key(&c, running);
            (c, status)
        })
        .collect();
    render(&ListPage {
        layout: Layout::of(&state),
        f: f.with_section("campaigns"),
        campaigns,
    })
}

pub(super) async fn edit_page(
    state: &AppState,
    f: Frame,
    id: Option<i64>,
    form: CampaignForm,
    errors: Errors,
    notice: Option<&'static str>,
) -> Result<HttpResponse, AppError> {
    refused_page(state, f, id, form, (errors, None), notice).await
}

/// The edit page after a save was refused: the field errors, and the campaign it overlaps.
async fn refused_page(
    state: &AppState,
    f: Frame,
    id: Option<i64>,
    form: CampaignForm,
    (errors, overlap): (Errors, Option<Period>),
    notice: Option<&'static str>,
) -> Result<HttpResponse, AppError> {
    let (tiers, background) = match id {
        Some(id) => {
            let mut tiers = Vec::new();
            for tier in db::campaign_edit::tier_summaries(&state.pool, id).await? {
                let stock = db::campaigns::stock(&state.pool, tier.id).await?;
                tiers.push(TierView { tier, stock });
            }
            let background = db::posters::of_campaign(&state.pool, id)
                .await?
                .and_then(|p| p.poster_background_key);
            (tiers, background)
        }
        None => (Vec::new(), None),
    };
    let failed = !errors.is_empty() || overlap.is_some();
    let can_end = match id {
        Some(id) => db::campaigns::get(&state.pool, id)
            .await?
            .is_some_and(|c| !c.is_default && status_key(&c, None) == "campaign.running"),
        None => false,
    };
    let risk = match id {
        Some(id) => db::risk::policy(&state.pool, id).await?,
        None => None,
    };
    let mut response = render(&EditPage {
        layout: Layout::of(state),
        f: f.with_section("campaigns"),
        id,
        form,
        errors,
        tiers,
        background,
        notice,
        overlap,
        can_end,
        risk,
    })?;
    if failed {
        *response.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
    }
    Ok(response)
}

/// The always-on default campaign, whose texts and layout a new campaign starts from.
async fn defaults(state: &AppState) -> Result<(Campaign, serde_json::Value), AppError> {
    let campaigns = db::campaigns::list(&state.pool).await?;
    let base = campaigns
        .iter()
        .find(|c| c.is_default)
        .or(campaigns.first())
        .cloned()
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("no campaign to start from")))?;
    let layout = db::posters::of_campaign(&state.pool, base.id)
        .await?
        .map(|p| p.poster_layout)
        .unwrap_or_default();
    Ok((base, layout))
}

pub async fn new_form(state: web::Data<AppState>, f: Frame) -> Result<HttpResponse, AppError> {
    let (base, layout) = defaults(&state).await?;
    let form = CampaignForm::blank(&base, &layout);
    edit_page(&state, f, None, form, Errors::new(), None).await
}

pub(super) async fn load(state: &AppState, id: i64) -> Result<CampaignForm, AppError> {
    let campaign = db::campaigns::get(&state.pool, id)
        .await?
        .ok_or_else(|| AppError::NotFound("no such campaign".into()))?;
    let tiers = db::campaigns::tiers(&state.pool, id).await?;
    let layout = db::posters::of_campaign(&state.pool, id)
        .await?
        .map(|p| p.poster_layout)
        .unwrap_or_default();
    Ok(CampaignForm::from_campaign(&campaign, &tiers, &layout))
}

#[derive(Deserialize)]
pub struct EditQuery {
    saved: Option<String>,
    uploaded: Option<String>,
}

pub async fn edit_form(
    state: web::Data<AppState>,
    f: Frame,
    id: web::Path<i64>,
    q: web::Query<EditQuery>,
) -> Result<HttpResponse, AppError> {
    let form = load(&state, *id).await?;
    let notice = match (&q.saved, &q.uploaded) {
        (Some(_), _) => Some("campaign.saved"),
        (_, Some(_)) => Some("campaign.uploaded"),
        _ => None,
    };
    edit_page(&state, f, Some(*id), form, Errors::new(), notice).await
}

fn saved(id: i64) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, format!("/admin/campaigns/{id}?saved=1")))
        .finish()
}

/// Maps what the database refused onto the form.
fn save_errors(e: SaveError, form: &CampaignForm) -> Result<(Errors, Option<Period>), AppError> {
    let mut errors = Errors::new();
    match e {
        SaveError::Overlaps(other) => return Ok((errors, Some(other))),
        SaveError::TierInUse(id) => {
            let row = form
                .tiers
                .iter()
                .position(|t| t.id.trim() == id.to_string())
                .unwrap_or(0);
            errors.insert(format!("tier_{row}"), "form.tier_in_use");
        }
        SaveError::DuplicateThreshold => {
            errors.insert("tiers".into(), "form.tier_duplicate");
        }
        SaveError::NotFound => return Err(AppError::NotFound("no such campaign".into())),
        SaveError::Db(e) => return Err(e.into()),
    }
    Ok((errors, None))
}

pub async fn create(
    state: web::Data<AppState>,
    f: Frame,
    body: web::Form<Vec<(String, String)>>,
) -> Result<HttpResponse, AppError> {
    let form = CampaignForm::from_pairs(&body);
    let (input, _) = match form.validate() {
        Ok(valid) => valid,
        Err(errors) => return edit_page(&state, f, None, form, errors, None).await,
    };
    match referral::campaigns::create(&state, &input).await {
        Ok(id) => Ok(saved(id)),
        Err(e) => {
            let refusal = save_errors(e, &form)?;
            refused_page(&state, f, None, form, refusal, None).await
        }
    }
}

pub async fn update(
    state: web::Data<AppState>,
    f: Frame,
    id: web::Path<i64>,
    body: web::Form<Vec<(String, String)>>,
) -> Result<HttpResponse, AppError> {
    let id = *id;
    let form = CampaignForm::from_pairs(&body);
    let (input, removed) = match form.validate() {
        Ok(valid) => valid,
        Err(errors) => return edit_page(&state, f, Some(id), form, errors, None).await,
    };
    match referral::campaigns::update(&state, id, &input, &removed).await {
        Ok(()) => Ok(saved(id)),
        Err(e) => {
            let refusal = save_errors(e, &form)?;
            refused_page(&state, f, Some(id), form, refusal, None).await
        }
    }
}

/// "End this campaign?": what followers will see once it has ended.
pub async fn end_form(
    state: web::Data<AppState>,
    f: Frame,
    id: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    let campaign = db::campaigns::get(&state.pool, *id)
        .await?
        .ok_or_else(|| AppError::NotFound("no such campaign".into()))?;
    // The push path's rule with this campaign gone: a configured campaign beats the default.
    let next = db::campaigns::list(&state.pool)
        .await?
        .into_iter()
        .filter(|c| c.id != campaign.id && status_key(c, None) == "campaign.running")
        .min_by_key(|c| (c.is_default, std::cmp::Reverse(c.starts_at)));
    render(&EndPage {
        layout: Layout::of(&state),
        f: f.with_section("campaigns"),
        campaign,
        next,
    })
}

/// Ends the campaign now (refused for the default campaign, and for one not running).
pub async fn end(state: web::Data<AppState>, id: web::Path<i64>) -> Result<HttpResponse, AppError> {
    if !referral::campaigns::end(&state, *id).await? {
        return Err(AppError::Conflict(
            "only a running campaign other than the default can be ended".into(),
        ));
    }
    Ok(HttpResponse::SeeOther()
        .insert_header((header::LOCATION, "/admin/campaigns"))
        .finish())
}
