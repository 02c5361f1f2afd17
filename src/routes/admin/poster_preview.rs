//! The campaign page's poster preview: the campaign's background and layout drawn by the same
//! renderer followers get (with the headline on the bundled background), with a sample QR code
//! and nickname.

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use anyhow::Context;

use crate::db;
use crate::error::AppError;
use crate::poster::personal::headline_of;
use crate::poster::{cached_font, default_background, render, render_turn, PosterLayout};
use crate::state::AppState;
use crate::wechat::qrcode::render_png;

const SAMPLE_NICKNAME: &str = "示例昵称";

pub async fn image(
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    let db::posters::PosterSettings {
        poster_background_key: key,
        poster_layout: layout,
    } = db::posters::of_campaign(&state.pool, *id)
        .await?
        .ok_or_else(|| AppError::NotFound("no such campaign".into()))?;
    let layout: PosterLayout =
        serde_json::from_value(layout).context("reading the poster layout")?;
    let headline = match (&key, db::campaigns::get(&state.pool, *id).await?) {
        (None, Some(campaign)) => Some(headline_of(&state, &campaign).await?),
        _ => None,
    };
    let background = match key {
        Some(key) => state
            .storage
            .get(&key)
            .await?
            .ok_or_else(|| AppError::NotFound("poster background missing from storage".into()))?
            .to_vec(),
        None => default_background()?,
    };
    let sample_url = format!("{}/sandbox/scan?ticket=preview", state.public_url);
    let font = cached_font(&state.settings.poster_font);
    // Rendering is CPU work: keep it off the async workers, and take a turn with the
    // followers' posters so previews cannot crowd them out.
    let _turn = render_turn().await?;
    let jpeg = web::block(move || -> anyhow::Result<Vec<u8>> {
        let qr = render_png(&sample_url)?;
        render(
            &background,
            &layout,
            &qr,
            None,
            Some(SAMPLE_NICKNAME),
            font.as_ref(),
            headline.as_ref(),
        )
    })
    .await
    .context("poster preview task")??;
    Ok(HttpResponse::Ok()
        .content_type("image/jpeg")
        // The layout changes without the URL changing: never serve a stale preview.
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(jpeg))
}
