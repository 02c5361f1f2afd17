//! Webhooks in the dashboard: the endpoints (add, delete, send a test event), and the delivery
//! log with a replay of failed deliveries. The same records as `/api/v1/webhooks`.

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpResponse};
use askama::Template;
use serde::Deserialize;
use serde_json::json;

use super::frame::Frame;
use crate::db;
use crate::db::webhooks::{LogLine, Webhook, EVENT_TYPES};
use crate::error::AppError;
use crate::routes::hooks_api::endpoint;
use crate::routes::layout::{render, Layout};
use crate::state::AppState;

/// Lines of the delivery log shown.
const LOG_LINES: i64 = 100;

#[derive(Template)]
#[template(path = "admin/webhooks.html")]
struct WebhooksPage {
    layout: Layout,
    f: Frame,
    hooks: Vec<Webhook>,
    log: Vec<LogLine>,
    event_types: String,
    url: String,
    events: String,
    error: Option<String>,
    notice: Option<&'static str>,
}

#[derive(Deserialize)]
pub struct Notice {
    done: Option<String>,
}

async fn show(
    state: &AppState,
    f: Frame,
    form: NewHook,
    error: Option<String>,
    notice: Option<&'static str>,
) -> Result<HttpResponse, AppError> {
    let failed = error.is_some();
    let mut response = render(&WebhooksPage {
        layout: Layout::of(state),
        f: f.with_section("webhooks"),
        hooks: db::webhooks::list(&state.pool).await?,
        log: db::webhooks::log(&state.pool, LOG_LINES).await?,
        event_types: EVENT_TYPES.join(", "),
        url: form.url,
        events: form.events,
        error,
        notice,
    })?;
    if failed {
        *response.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
    }
    Ok(response)
}

pub async fn page(
    state: web::Data<AppState>,
    f: Frame,
    q: web::Query<Notice>,
) -> Result<HttpResponse, AppError> {
    let notice = match q.done.as_deref() {
        Some("test") => Some("hooks.test_queued"),
        Some("replay") => Some("hooks.replayed"),
        _ => None,
    };
    let empty = NewHook {
        url: String::new(),
        secret: String::new(),
        events: "*".into(),
    };
    show(&state, f, empty, None, notice).await
}

#[derive(Deserialize)]
pub struct NewHook {
    url: String,
    secret: String,
    /// Event types separated by commas or spaces, or `*`.
    events: String,
}

fn back(done: &str) -> HttpResponse {
    let to = if done.is_empty() {
        "/admin/webhooks".to_string()
    } else {
        format!("/admin/webhooks?done={done}")
    };
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, to))
        .finish()
}

pub async fn create(
    state: web::Data<AppState>,
    f: Frame,
    form: web::Form<NewHook>,
) -> Result<HttpResponse, AppError> {
    let form = form.into_inner();
    let events: Vec<String> = form
        .events
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|e| !e.is_empty())
        .map(str::to_string)
        .collect();
    match endpoint(&state.settings, &form.url, &form.secret, events).await {
        Ok(new) => {
            db::webhooks::create(&state.pool, &new.url, &new.secret, &new.events).await?;
            Ok(back(""))
        }
        Err(why) => show(&state, f, form, Some(why), None).await,
    }
}

pub async fn delete(
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    if !db::webhooks::delete(&state.pool, *id).await? {
        return Err(AppError::NotFound("no such webhook".into()));
    }
    Ok(back(""))
}

pub async fn test(
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    let data = json!({ "webhook_id": *id, "message": "a test event from the Fission dashboard" });
    if !db::webhooks::emit_test(&state.pool, *id, data).await? {
        return Err(AppError::NotFound("no such webhook".into()));
    }
    Ok(back("test"))
}

pub async fn replay(
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    if !db::webhooks::replay(&state.pool, *id).await? {
        return Err(AppError::NotFound("no failed delivery with that id".into()));
    }
    Ok(back("replay"))
}

/// The words for a delivery's status.
pub fn status_key(status: &str) -> &'static str {
    match status {
        "delivered" => "hooks.delivered",
        "failed" => "hooks.failed",
        _ => "hooks.pending",
    }
}
