//! CSRF tokens: one random token per session, sent back by every form as the hidden field
//! `csrf` (or by scripts as the `X-CSRF-Token` header). The guard checks it before any handler
//! runs, reading the body once and handing the same bytes on to the handler.

use actix_session::{Session, SessionExt};
use actix_web::dev::{Payload, ServiceRequest};
use actix_web::http::header;
use actix_web::HttpMessage;
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use rand::RngCore;
use subtle::ConstantTimeEq;

use crate::error::AppError;

const KEY: &str = "csrf";
pub const FIELD: &str = "csrf";
const HEADER: &str = "x-csrf-token";
/// Largest url-encoded form (a pasted list of reward codes fits).
pub const FORM_LIMIT: usize = 2 * 1024 * 1024;
/// Largest multipart upload: a 5 MB poster background or a code list, plus the form around it.
pub const MULTIPART_LIMIT: usize = 6 * 1024 * 1024;

fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// The session's token, created on first use (the login form creates it before sign-in).
pub fn token(session: &Session) -> Result<String, AppError> {
    if let Ok(Some(token)) = session.get::<String>(KEY) {
        return Ok(token);
    }
    rotate(session)
}

pub fn rotate(session: &Session) -> Result<String, AppError> {
    let token = new_token();
    session
        .insert(KEY, &token)
        .map_err(|e| AppError::Internal(anyhow::anyhow!("session: {e}")))?;
    Ok(token)
}

/// True when the request carries the session's token.
pub async fn check(req: &mut ServiceRequest) -> Result<bool, AppError> {
    let Ok(Some(expected)) = req.get_session().get::<String>(KEY) else {
        return Ok(false);
    };
    let given = match req.headers().get(HEADER).and_then(|v| v.to_str().ok()) {
        Some(value) => Some(value.to_string()),
        None => from_body(req).await?,
    };
    Ok(given.is_some_and(|g| bool::from(g.as_bytes().ct_eq(expected.as_bytes()))))
}

/// Finds the `csrf` field in a url-encoded or multipart body, then puts the body back.
async fn from_body(req: &mut ServiceRequest) -> Result<Option<String>, AppError> {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let multipart = content_type.starts_with("multipart/form-data");
    if !multipart && !content_type.starts_with("application/x-www-form-urlencoded") {
        return Ok(None);
    }
    let limit = if multipart {
        MULTIPART_LIMIT
    } else {
        FORM_LIMIT
    };
    let body = read(req.take_payload(), limit).await?;
    let found = match &body {
        None => None,
        Some(body) if multipart => multipart_field(req.headers(), body.clone()).await,
        Some(body) => serde_urlencoded::from_bytes::<Vec<(String, String)>>(body)
            .ok()
            .and_then(|pairs| pairs.into_iter().find(|(k, _)| k == FIELD).map(|(_, v)| v)),
    };
    let body = body.unwrap_or_default();
    req.set_payload(Payload::Stream {
        payload: Box::pin(futures_util::stream::once(async move { Ok(body) })),
    });
    Ok(found)
}

/// The body, or `None` when it is larger than `limit` (refused like a missing token).
async fn read(mut payload: Payload, limit: usize) -> Result<Option<Bytes>, AppError> {
    let mut body = BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| AppError::BadRequest(format!("reading the body: {e}")))?;
        if body.len() + chunk.len() > limit {
            return Ok(None);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Some(body.freeze()))
}

async fn multipart_field(headers: &header::HeaderMap, body: Bytes) -> Option<String> {
    let stream =
        futures_util::stream::once(async move { Ok::<_, actix_web::error::PayloadError>(body) });
    let mut form = actix_multipart::Multipart::new(headers, stream);
    while let Some(Ok(mut field)) = form.next().await {
        let is_token = field.name() == Some(FIELD);
        let mut value = Vec::new();
        while let Some(Ok(chunk)) = field.next().await {
            if is_token && value.len() < 256 {
                value.extend_from_slice(&chunk);
            }
        }
        if is_token {
            return String::from_utf8(value).ok();
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_and_random() {
        let (a, b) = (new_token(), new_token());
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
    }
}
