//! Channel codes: named permanent codes an operator prints (a shop, a flyer), their scans and
//! follows, and a print-size PNG of each.

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use askama::Template;
use serde::Deserialize;

use super::frame::Frame;
use crate::db;
use crate::db::codes::ChannelRow;
use crate::error::AppError;
use crate::referral::channels::{self, ChannelError};
use crate::routes::layout::{render, Layout};
use crate::services::ServiceError;
use crate::state::AppState;
use crate::wechat::qrcode::render_png_at;
use crate::wechat::WechatError;

/// Print size: 1200 px is 10 cm at 300 dpi.
const PRINT_PX: u32 = 1200;

#[derive(Template)]
#[template(path = "admin/channels.html")]
struct ChannelsPage {
    layout: Layout,
    f: Frame,
    channels: Vec<ChannelRow>,
    name: String,
    error: Option<String>,
}

async fn show(
    state: &AppState,
    f: Frame,
    name: String,
    error: Option<String>,
) -> Result<HttpResponse, AppError> {
    let status = if error.is_some() { 422 } else { 200 };
    let mut response = render(&ChannelsPage {
        layout: Layout::of(state),
        f: f.with_section("channels"),
        channels: db::codes::channels(&state.pool).await?,
        name,
        error,
    })?;
    *response.status_mut() =
        actix_web::http::StatusCode::from_u16(status).unwrap_or(actix_web::http::StatusCode::OK);
    Ok(response)
}

pub async fn page(state: web::Data<AppState>, f: Frame) -> Result<HttpResponse, AppError> {
    show(&state, f, String::new(), None).await
}

#[derive(Deserialize)]
pub struct NewChannel {
    name: String,
}

pub async fn create(
    state: web::Data<AppState>,
    f: Frame,
    form: web::Form<NewChannel>,
) -> Result<HttpResponse, AppError> {
    let name = form.into_inner().name;
    let message = match channels::create(&state, &name).await {
        Ok(_) => {
            return Ok(HttpResponse::SeeOther()
                .insert_header((header::LOCATION, "/admin/channels"))
                .finish())
        }
        Err(ChannelError::NameTaken(_)) => f.t("channels.taken").to_string(),
        Err(ChannelError::BadName) => f.t("channels.bad_name").to_string(),
        Err(ChannelError::Issue(e)) => {
            tracing::warn!(error = ?e, "could not issue a channel code");
            match e {
                // WeChat's own answer (a quota, a misconfigured account) is the operator's to act on.
                ServiceError::Wechat(
                    w @ (WechatError::Api { .. } | WechatError::Config { .. }),
                ) => {
                    format!("{}: {w}", f.t("channels.issue_failed"))
                }
                // Anything else is ours: logged above, not shown.
                _ => format!(
                    "{}. {}",
                    f.t("channels.issue_failed"),
                    f.t("error.internal")
                ),
            }
        }
    };
    show(&state, f, name, Some(message)).await
}

/// The channel's QR code at print size, rendered from the ticket's content (no WeChat call).
pub async fn qr(state: web::Data<AppState>, id: web::Path<i64>) -> Result<HttpResponse, AppError> {
    let code = db::codes::by_channel(&state.pool, *id)
        .await?
        .ok_or_else(|| AppError::NotFound("no such channel".into()))?;
    let png = render_png_at(&code.url, PRINT_PX)?;
    Ok(HttpResponse::Ok()
        .content_type("image/png")
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"channel-{}.png\"", *id),
        ))
        .body(png))
}
