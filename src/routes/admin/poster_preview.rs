//! The campaign page's poster preview. For now it serves the stored background as it is; the
//! poster renderer (`crate::poster::render`, written on the follower-page branch) takes over
//! here once both branches are merged, drawing a sample QR code, avatar and nickname on it.

use actix_web::http::header;
use actix_web::{web, HttpResponse};

use crate::db;
use crate::error::AppError;
use crate::state::AppState;

pub async fn image(
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    let (key, _layout) = db::campaign_edit::poster(&state.pool, *id)
        .await?
        .ok_or_else(|| AppError::NotFound("no such campaign".into()))?;
    let key = key.ok_or_else(|| AppError::NotFound("no poster background uploaded".into()))?;
    let data = state
        .storage
        .get(&key)
        .await?
        .ok_or_else(|| AppError::NotFound("poster background missing from storage".into()))?;
    let content_type = if key.ends_with(".png") {
        "image/png"
    } else {
        "image/jpeg"
    };
    Ok(HttpResponse::Ok()
        .content_type(content_type)
        // The layout changes without the URL changing: never serve a stale preview.
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(data))
}
