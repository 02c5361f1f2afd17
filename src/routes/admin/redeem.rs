//! Redeeming in-store rewards: staff scan the code on a follower's invite page with a phone,
//! which opens `/admin/redeem/<token>` here (signing in first if needed); the page names the
//! reward and the follower, and its button records the redemption — once, with who and when.
//! Staff accounts may use these pages and nothing else (see `guard`).

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpMessage, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;

use super::frame::{cn_time, Frame};
use super::session::SignedIn;
use crate::db;
use crate::db::redemptions::Redemption;
use crate::error::AppError;
use crate::referral::texts;
use crate::routes::layout::{render, Layout};
use crate::state::AppState;

#[derive(Template)]
#[template(path = "admin/redeem_start.html")]
struct StartPage {
    layout: Layout,
    f: Frame,
}

#[derive(Template)]
#[template(path = "admin/redeem.html")]
struct RedeemPage {
    layout: Layout,
    f: Frame,
    token: String,
    reward: String,
    campaign: String,
    follower: String,
    state: State,
    /// This very request redeemed it.
    done: bool,
}

enum State {
    /// Can be redeemed now.
    Open,
    /// Redeemed before: when (China time) and by which account.
    Redeemed { at: String, by: String },
    /// Not redeemable: the message key saying why.
    Refused(&'static str),
}

/// What a staff account sees after signing in: how to redeem.
pub async fn start(state: web::Data<AppState>, f: Frame) -> Result<HttpResponse, AppError> {
    render(&StartPage {
        layout: Layout::of(&state),
        f: f.with_section("redeem"),
    })
}

#[derive(Deserialize)]
pub struct Done {
    done: Option<String>,
}

/// A scanned code: the reward, the follower, and the button (or why there is none).
pub async fn page(
    state: web::Data<AppState>,
    f: Frame,
    token: web::Path<String>,
    q: web::Query<Done>,
) -> Result<HttpResponse, AppError> {
    let found = lookup(&state, &token).await?;
    show(&state, f, &token, found, q.done.is_some(), StatusCode::OK)
}

/// The 核销 button. A code already redeemed is refused with when and by whom.
pub async fn submit(
    state: web::Data<AppState>,
    req: HttpRequest,
    f: Frame,
    token: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let user = req
        .extensions()
        .get::<SignedIn>()
        .cloned()
        .ok_or(AppError::Unauthorized)?;
    let found = lookup(&state, &token).await?;
    if db::redemptions::redeem(&state.pool, &token, user.id).await? {
        tracing::info!(grant = found.grant_id, account = %user.username, "reward redeemed");
        return Ok(HttpResponse::SeeOther()
            .insert_header((header::LOCATION, format!("/admin/redeem/{token}?done=1")))
            .finish());
    }
    // Someone else may have redeemed it between the page and the button: show the latest.
    let latest = lookup(&state, &token).await?;
    show(&state, f, &token, latest, false, StatusCode::CONFLICT)
}

/// The redemption a token names; tokens are random hex, so anything else names none.
async fn lookup(state: &AppState, token: &str) -> Result<Redemption, AppError> {
    let plausible =
        (16..=64).contains(&token.len()) && token.bytes().all(|b| b.is_ascii_hexdigit());
    let found = if plausible {
        db::redemptions::by_token(&state.pool, token).await?
    } else {
        None
    };
    found.ok_or_else(|| AppError::NotFound("no such redemption code".into()))
}

fn show(
    state: &AppState,
    f: Frame,
    token: &str,
    r: Redemption,
    done: bool,
    status: StatusCode,
) -> Result<HttpResponse, AppError> {
    let state_now = match (&r.redeemed_at, &r.redeemed_by) {
        (Some(at), by) => State::Redeemed {
            at: cn_time(at),
            by: by.clone().unwrap_or_default(),
        },
        (None, _) if r.status != "granted" => State::Refused("redeem.not_granted"),
        (None, _) if !r.redeem_in_store => State::Refused("redeem.not_in_store"),
        (None, _) => State::Open,
    };
    let mut response = render(&RedeemPage {
        layout: Layout::of(state),
        f: f.with_section("redeem"),
        token: token.to_string(),
        reward: r.tier_name,
        campaign: r.campaign_name,
        follower: texts::mask_name(r.nickname.as_deref().unwrap_or("")),
        state: state_now,
        done,
    })?;
    *response.status_mut() = status;
    Ok(response)
}
