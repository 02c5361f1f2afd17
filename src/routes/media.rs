//! Stored images (QR codes, posters). Keys are content hashes: an object never changes, so it
//! is cached for a year.

use actix_web::http::header;
use actix_web::{web, HttpResponse};

use crate::error::AppError;
use crate::state::AppState;

pub async fn serve(
    state: web::Data<AppState>,
    key: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let content_type =
        media_type(&key).ok_or_else(|| AppError::NotFound("no such image".into()))?;
    let data = state
        .storage
        .get(&key)
        .await?
        .ok_or_else(|| AppError::NotFound("no such image".into()))?;
    Ok(HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((header::CACHE_CONTROL, "public, max-age=31536000, immutable"))
        .body(data))
}

/// Only keys Fission itself makes (`kind/<40 hex>.png|jpg`) are served.
fn media_type(key: &str) -> Option<&'static str> {
    let (kind, file) = key.split_once('/')?;
    let (hash, ext) = file.split_once('.')?;
    let well_formed = !kind.is_empty()
        && kind.bytes().all(|b| b.is_ascii_lowercase())
        && hash.len() == 40
        && hash.bytes().all(|b| b.is_ascii_hexdigit());
    match ext {
        "png" if well_formed => Some("image/png"),
        "jpg" if well_formed => Some("image/jpeg"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::media_type;

    #[test]
    fn only_content_keys_are_served() {
        assert_eq!(
            media_type("qr/aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d.png"),
            Some("image/png")
        );
        assert_eq!(
            media_type("poster/aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d.jpg"),
            Some("image/jpeg")
        );
        for bad in [
            "../x.png",
            "qr/../../etc/passwd",
            "qr/abc.png",
            "qr/aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d.exe",
        ] {
            assert_eq!(media_type(bad), None, "{bad}");
        }
    }
}
