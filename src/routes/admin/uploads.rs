//! Uploads on the campaign page (multipart): the poster background (a PNG or JPEG of at most
//! 5 MB) and reward codes for a tier's pool (a CSV or text file and/or a pasted list, one code
//! per line). A refused upload shows the campaign page again with the reason beside the field.

use std::io::Cursor;

use actix_multipart::Multipart;
use actix_web::http::header;
use actix_web::{web, HttpResponse};
use futures_util::StreamExt;

use super::campaign_form::Errors;
use super::campaigns::{edit_page, load};
use super::frame::Frame;
use crate::db;
use crate::error::AppError;
use crate::poster::MAX_SIDE;
use crate::referral;
use crate::state::AppState;

pub const MAX_BACKGROUND_BYTES: usize = 5 * 1024 * 1024;
const MAX_CODES_BYTES: usize = 4 * 1024 * 1024;
const MAX_CODE_CHARS: usize = 128;

/// Reads every field of the form: (name, bytes), each cut off at `limit` bytes + 1 so an
/// oversized part is recognisable without holding more of it.
async fn fields(mut form: Multipart, limit: usize) -> Result<Vec<(String, Vec<u8>)>, AppError> {
    let mut out = Vec::new();
    while let Some(field) = form.next().await {
        let mut field =
            field.map_err(|e| AppError::BadRequest(format!("reading the upload: {e}")))?;
        let name = field.name().unwrap_or_default().to_string();
        let mut data = Vec::new();
        while let Some(chunk) = field.next().await {
            let chunk =
                chunk.map_err(|e| AppError::BadRequest(format!("reading the upload: {e}")))?;
            if data.len() <= limit {
                data.extend_from_slice(&chunk[..chunk.len().min(limit + 1 - data.len())]);
            }
        }
        out.push((name, data));
    }
    Ok(out)
}

/// The stored file extension of an acceptable background, or the message key of why not.
pub fn background_kind(data: &[u8]) -> Result<&'static str, &'static str> {
    if data.is_empty() {
        return Err("upload.empty");
    }
    if data.len() > MAX_BACKGROUND_BYTES {
        return Err("upload.too_large");
    }
    let ext = if data.starts_with(b"\x89PNG\r\n\x1a\n") {
        "png"
    } else if data.starts_with(&[0xFF, 0xD8, 0xFF]) {
        "jpg"
    } else {
        return Err("upload.not_image");
    };
    // The header must decode too: a renamed file or a truncated upload is refused here.
    let dimensions = image::ImageReader::new(Cursor::new(data))
        .with_guessed_format()
        .ok()
        .and_then(|r| r.into_dimensions().ok());
    match dimensions {
        // The renderer's own limit: a background it would refuse must not be accepted here.
        Some((w, h)) if (200..=MAX_SIDE).contains(&w) && (200..=MAX_SIDE).contains(&h) => Ok(ext),
        Some(_) => Err("upload.bad_size"),
        None => Err("upload.not_image"),
    }
}

async fn refused(
    state: &AppState,
    f: Frame,
    id: i64,
    field: String,
    key: &'static str,
) -> Result<HttpResponse, AppError> {
    let form = load(state, id).await?;
    let mut errors = Errors::new();
    errors.insert(field, key);
    edit_page(state, f, Some(id), form, errors, None).await
}

fn uploaded(id: i64) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((
            header::LOCATION,
            format!("/admin/campaigns/{id}?uploaded=1"),
        ))
        .finish()
}

pub async fn poster_background(
    state: web::Data<AppState>,
    f: Frame,
    id: web::Path<i64>,
    form: Multipart,
) -> Result<HttpResponse, AppError> {
    let id = *id;
    let data = fields(form, MAX_BACKGROUND_BYTES)
        .await?
        .into_iter()
        .find(|(name, _)| name == "background")
        .map(|(_, data)| data)
        .unwrap_or_default();
    let ext = match background_kind(&data) {
        Ok(ext) => ext,
        Err(key) => return refused(&state, f, id, "background".into(), key).await,
    };
    let key = state.storage.put("poster-bg", ext, data).await?;
    if !referral::campaigns::set_poster_background(&state, id, &key).await? {
        return Err(AppError::NotFound("no such campaign".into()));
    }
    Ok(uploaded(id))
}

/// The codes in an uploaded list: one per line, blank lines skipped, a CSV line's quotes
/// removed; `Err` with a message key when a line cannot be a code.
pub fn parse_codes(text: &str) -> Result<Vec<String>, &'static str> {
    let mut codes = Vec::new();
    for line in text.trim_start_matches('\u{feff}').lines() {
        let code = line.trim().trim_matches('"').trim();
        if code.is_empty() {
            continue;
        }
        if code.chars().count() > MAX_CODE_CHARS || code.chars().any(char::is_control) {
            return Err("upload.bad_code");
        }
        codes.push(code.to_string());
    }
    if codes.is_empty() {
        return Err("upload.no_codes");
    }
    Ok(codes)
}

pub async fn reward_codes(
    state: web::Data<AppState>,
    f: Frame,
    path: web::Path<(i64, i64)>,
    form: Multipart,
) -> Result<HttpResponse, AppError> {
    let (id, tier) = path.into_inner();
    if !db::campaign_edit::tier_of(&state.pool, id, tier).await? {
        return Err(AppError::NotFound("no such tier".into()));
    }
    let field = format!("codes_{tier}");
    let mut text = String::new();
    for (name, data) in fields(form, MAX_CODES_BYTES).await? {
        if name != "file" && name != "codes" {
            continue;
        }
        if data.len() > MAX_CODES_BYTES {
            return refused(&state, f, id, field, "upload.too_large").await;
        }
        match String::from_utf8(data) {
            Ok(part) => {
                text.push_str(&part);
                text.push('\n');
            }
            Err(_) => return refused(&state, f, id, field, "upload.not_utf8").await,
        }
    }
    let codes = match parse_codes(&text) {
        Ok(codes) => codes,
        Err(key) => return refused(&state, f, id, field, key).await,
    };
    let added = referral::campaigns::add_reward_codes(&state, tier, &codes).await?;
    tracing::info!(tier, added, "reward codes added");
    Ok(uploaded(id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_lists_are_read_line_by_line() {
        let codes = parse_codes("\u{feff}AAA-1\r\n\n \"BBB-2\" \nCCC-3").unwrap();
        assert_eq!(codes, vec!["AAA-1", "BBB-2", "CCC-3"]);
        assert_eq!(parse_codes("\n \n"), Err("upload.no_codes"));
        assert_eq!(parse_codes(&"x".repeat(200)), Err("upload.bad_code"));
    }

    #[test]
    fn only_real_png_or_jpeg_backgrounds_pass() {
        let mut png = Vec::new();
        image::DynamicImage::new_rgb8(750, 1334)
            .write_to(&mut Cursor::new(&mut png), image::ImageFormat::Png)
            .unwrap();
        assert_eq!(background_kind(&png), Ok("png"));
        assert_eq!(background_kind(b"GIF89a......"), Err("upload.not_image"));
        assert_eq!(background_kind(&png[..20]), Err("upload.not_image"));
        let mut huge = png.clone();
        huge.resize(MAX_BACKGROUND_BYTES + 1, 0);
        assert_eq!(background_kind(&huge), Err("upload.too_large"));
        let mut tiny = Vec::new();
        image::DynamicImage::new_rgb8(10, 10)
            .write_to(&mut Cursor::new(&mut tiny), image::ImageFormat::Png)
            .unwrap();
        assert_eq!(background_kind(&tiny), Err("upload.bad_size"));
    }
}
