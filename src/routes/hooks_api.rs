//! `/api/v1/webhooks` and `/api/v1/bindings`: registering webhook endpoints, and binding codes.
//! Bodies are parsed here (not by an extractor) so that every bad input gets a
//! `{"error": "…"}` that says what is wrong.

use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::config::Settings;
use crate::db;
use crate::db::bindings::BindingRow;
use crate::db::webhooks::EVENT_TYPES;
use crate::domain::ExpireSeconds;
use crate::error::AppError;
use crate::jobs::webhooks::check_target;
use crate::referral;
use crate::state::AppState;

/// The largest payload a binding code carries, serialized.
const MAX_PAYLOAD_BYTES: usize = 4096;
/// Binding codes live at least a minute, at most WeChat's 30 days.
const MIN_EXPIRE_SECS: i64 = 60;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/webhooks", web::get().to(list))
        .route("/webhooks", web::post().to(create))
        .route("/webhooks/{id}", web::delete().to(delete))
        .route("/bindings", web::post().to(create_binding))
        .route("/bindings/{id}", web::get().to(binding));
}

/// An endpoint as registered: URL checked (and not private unless allowed), a secret, and
/// known event types (`*` for all).
pub struct NewEndpoint {
    pub url: String,
    pub secret: String,
    pub events: Vec<String>,
}

/// Checks an endpoint's parts; the error says what is wrong, for the operator.
pub async fn endpoint(
    settings: &Settings,
    url: &str,
    secret: &str,
    events: Vec<String>,
) -> Result<NewEndpoint, String> {
    if secret.is_empty() {
        return Err("the secret must not be empty".into());
    }
    if secret.len() > 256 {
        return Err("the secret must be at most 256 bytes".into());
    }
    if events.is_empty() {
        return Err("events must name at least one event type, or \"*\"".into());
    }
    let mut events = events;
    events.sort();
    events.dedup();
    if events.iter().any(|e| e == "*") {
        events = vec!["*".to_string()];
    }
    if let Some(unknown) = events
        .iter()
        .find(|e| *e != "*" && !EVENT_TYPES.contains(&e.as_str()))
    {
        return Err(format!(
            "unknown event type {unknown:?}; known: {}",
            EVENT_TYPES.join(", ")
        ));
    }
    // Last: it may look the name up.
    let url = check_target(settings, url.trim()).await?;
    Ok(NewEndpoint {
        url: url.to_string(),
        secret: secret.to_string(),
        events,
    })
}

#[derive(Deserialize)]
struct EndpointBody {
    url: String,
    secret: String,
    events: Vec<String>,
}

fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, AppError> {
    serde_json::from_slice(body).map_err(|e| AppError::BadRequest(format!("bad JSON body: {e}")))
}

async fn create(state: web::Data<AppState>, body: web::Bytes) -> Result<HttpResponse, AppError> {
    let body: EndpointBody = parse(&body)?;
    let new = endpoint(&state.settings, &body.url, &body.secret, body.events)
        .await
        .map_err(AppError::BadRequest)?;
    let id = db::webhooks::create(&state.pool, &new.url, &new.secret, &new.events).await?;
    Ok(HttpResponse::Created().json(json!({ "id": id })))
}

async fn list(state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    Ok(HttpResponse::Ok().json(db::webhooks::list(&state.pool).await?))
}

async fn delete(state: web::Data<AppState>, id: web::Path<i64>) -> Result<HttpResponse, AppError> {
    if !db::webhooks::delete(&state.pool, *id).await? {
        return Err(AppError::NotFound("no such webhook".into()));
    }
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize)]
struct BindingBody {
    payload: Value,
    expire_seconds: i64,
}

#[derive(Serialize)]
struct BindingView {
    id: Uuid,
    scene_str: String,
    ticket: String,
    url: String,
    image_url: Option<String>,
    expires_at: DateTime<Utc>,
    status: &'static str,
    openid: Option<String>,
    completed_at: Option<DateTime<Utc>>,
}

impl BindingView {
    fn new(state: &AppState, b: BindingRow) -> BindingView {
        let status = if b.completed_at.is_some() {
            "completed"
        } else if b.expires_at <= Utc::now() {
            "expired"
        } else {
            "pending"
        };
        BindingView {
            id: b.id,
            scene_str: b.scene_str,
            ticket: b.ticket,
            url: b.url,
            image_url: b.image_key.map(|k| state.media_url(&k)),
            expires_at: b.expires_at,
            status,
            openid: b.openid,
            completed_at: b.completed_at,
        }
    }
}

async fn create_binding(
    state: web::Data<AppState>,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let body: BindingBody = parse(&body)?;
    if body.payload.to_string().len() > MAX_PAYLOAD_BYTES {
        return Err(AppError::BadRequest(format!(
            "payload must be at most {MAX_PAYLOAD_BYTES} bytes serialized"
        )));
    }
    if !(MIN_EXPIRE_SECS..=i64::from(ExpireSeconds::MAX)).contains(&body.expire_seconds) {
        return Err(AppError::BadRequest(format!(
            "expire_seconds must be {MIN_EXPIRE_SECS}..={}",
            ExpireSeconds::MAX
        )));
    }
    let expire = ExpireSeconds::new(body.expire_seconds)?;
    let binding = referral::bindings::create(&state, &body.payload, expire).await?;
    Ok(HttpResponse::Created().json(BindingView::new(&state, binding)))
}

async fn binding(
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let not_found = || AppError::NotFound("no such binding".into());
    let id = Uuid::parse_str(&id).map_err(|_| not_found())?;
    let binding = db::bindings::get(&state.pool, id)
        .await?
        .ok_or_else(not_found)?;
    Ok(HttpResponse::Ok().json(BindingView::new(&state, binding)))
}
