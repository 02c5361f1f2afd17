//! `/api/v1`: the JSON API for scripts. Every route sits behind `require_bearer`, applied once
//! to the whole scope.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use crate::db;
use crate::db::codes::CodeRow;
use crate::domain::{OpenId, RiskStatus, Signal};
use crate::error::AppError;
use crate::referral;
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/leaderboard", web::get().to(leaderboard))
        .route("/users/{openid}", web::get().to(user))
        .route("/users/{openid}/invite-code", web::post().to(invite_code))
        .route("/channels", web::get().to(channels))
        .route("/channels", web::post().to(create_channel))
        .configure(super::hooks_api::configure);
}

/// True when the request carries `Authorization: Bearer $FISSION_ADMIN_TOKEN`.
pub fn has_admin_token(state: &AppState, headers: &header::HeaderMap) -> Result<bool, AppError> {
    let Some(expected) = &state.settings.admin_token else {
        return Err(AppError::NotFound(
            "the JSON API is disabled: set FISSION_ADMIN_TOKEN".into(),
        ));
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    Ok(bool::from(
        given.as_bytes().ct_eq(expected.expose_secret().as_bytes()),
    ))
}

pub async fn require_bearer(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let state = req
        .app_data::<web::Data<AppState>>()
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("application state missing")))?;
    if !has_admin_token(state, req.headers())? {
        return Err(AppError::Unauthorized.into());
    }
    next.call(req).await
}

#[derive(Deserialize)]
pub struct LeaderboardQuery {
    campaign: Option<i64>,
    limit: Option<i64>,
    offset: Option<i64>,
}

async fn leaderboard(
    state: web::Data<AppState>,
    q: web::Query<LeaderboardQuery>,
) -> Result<HttpResponse, AppError> {
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(AppError::BadRequest(
            "limit must be between 1 and 1000".into(),
        ));
    }
    let offset = q.offset.unwrap_or(0).max(0);
    let campaign = super::campaign_or_active(&state.pool, q.campaign).await?;
    let rows = db::referrals::leaderboard(&state.pool, campaign.id, limit, offset).await?;
    Ok(HttpResponse::Ok().json(rows))
}

#[derive(Serialize)]
struct UserView {
    openid: String,
    subscribed: bool,
    invites: i64,
    invited_by: Option<String>,
    scene_id: Option<i32>,
    scene_str: Option<String>,
    created_at: DateTime<Utc>,
    risk: RiskView,
}

/// Where the follower stands as an inviter: the most severe status in any campaign, and every
/// signal that fired for them with its evidence.
#[derive(Serialize)]
struct RiskView {
    status: RiskStatus,
    signals: Vec<Signal>,
}

async fn user(
    state: web::Data<AppState>,
    openid: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let openid = OpenId::parse(&openid)?;
    let user = db::users::get(&state.pool, &openid)
        .await?
        .ok_or_else(|| AppError::NotFound("no such user".into()))?;
    let code = db::codes::by_owner(&state.pool, &openid).await?;
    let invites = db::referrals::invites_total(&state.pool, &openid).await?;
    let invited_by = db::referrals::inviter_of(&state.pool, &openid).await?;
    let risk = RiskView {
        status: db::risk::worst_status(&state.pool, openid.as_str()).await?,
        signals: db::risk::signals_of(&state.pool, None, openid.as_str())
            .await?
            .into_iter()
            .map(|s| Signal {
                name: s.name,
                value: s.value,
                threshold: s.threshold,
                at: s.at,
            })
            .collect(),
    };
    Ok(HttpResponse::Ok().json(UserView {
        openid: user.openid,
        subscribed: user.subscribed,
        invites,
        invited_by,
        scene_id: code.as_ref().and_then(|c| c.scene_id),
        scene_str: code.and_then(|c| c.scene_str),
        created_at: user.created_at,
        risk,
    }))
}

#[derive(Serialize)]
pub struct CodeView {
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    scene_id: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    scene_str: Option<String>,
    ticket: String,
    url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    expires_at: Option<DateTime<Utc>>,
    image_url: Option<String>,
}

impl CodeView {
    pub fn new(state: &AppState, code: CodeRow) -> CodeView {
        CodeView {
            kind: if code.permanent {
                "permanent"
            } else {
                "temporary"
            },
            scene_id: code.scene_id,
            scene_str: code.scene_str,
            ticket: code.ticket,
            url: code.url,
            expires_at: code.expires_at,
            image_url: code.image_key.map(|k| state.media_url(&k)),
        }
    }
}

async fn invite_code(
    state: web::Data<AppState>,
    openid: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let openid = OpenId::parse(&openid)?;
    let code = referral::codes::issue(&state, &openid).await?;
    Ok(HttpResponse::Ok().json(CodeView::new(&state, code)))
}

async fn channels(state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    Ok(HttpResponse::Ok().json(db::codes::channels(&state.pool).await?))
}

#[derive(Deserialize)]
struct NewChannel {
    name: String,
}

async fn create_channel(
    state: web::Data<AppState>,
    body: web::Json<NewChannel>,
) -> Result<HttpResponse, AppError> {
    use referral::channels::ChannelError;
    match referral::channels::create(&state, &body.name).await {
        Ok(code) => Ok(HttpResponse::Created().json(CodeView::new(&state, code))),
        Err(e @ ChannelError::NameTaken(_)) => Err(AppError::Conflict(e.to_string())),
        Err(e @ ChannelError::BadName) => Err(AppError::BadRequest(e.to_string())),
        Err(ChannelError::Issue(e)) => Err(e.into()),
    }
}
