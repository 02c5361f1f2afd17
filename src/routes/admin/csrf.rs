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
/// Largest login form: a name, a password, the token and where to go next. Anyone may post it,
/// so anything bigger is refused before it is read.
pub const LOGIN_LIMIT: usize = 4 * 1024;

/// What bodies a route takes, before anyone knows who sent them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    /// The login form: url-encoded, `LOGIN_LIMIT` bytes.
    Login,
    /// A signed-in form: url-encoded, `FORM_LIMIT` bytes.
    Form,
    /// A signed-in upload: multipart up to `MULTIPART_LIMIT`, or url-encoded.
    Upload,
}

/// The outcome of the check.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Valid,
    /// No token, or not the session's.
    Invalid,
    /// A content type the route does not take.
    Unsupported,
    TooLarge,
}

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

/// Whether the request carries the session's token. A body is read only when the token is not
/// in a header, only of a kind the route takes, and only up to its limit.
pub async fn check(req: &mut ServiceRequest, kind: Body) -> Result<Verdict, AppError> {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let multipart = content_type.starts_with("multipart/form-data");
    let form = content_type.starts_with("application/x-www-form-urlencoded");
    let limit = match kind {
        Body::Login => LOGIN_LIMIT,
        Body::Form => FORM_LIMIT,
        Body::Upload if multipart => MULTIPART_LIMIT,
        Body::Upload => FORM_LIMIT,
    };
    if multipart && kind != Body::Upload {
        return Ok(Verdict::Unsupported);
    }
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Ok(Verdict::TooLarge);
    }
    let Ok(Some(expected)) = req.get_session().get::<String>(KEY) else {
        return Ok(Verdict::Invalid);
    };
    // The login form's body is always read here, so its limit holds however it is sent.
    let header_token = req
        .headers()
        .get(HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|_| kind != Body::Login);
    let given = match header_token {
        Some(value) => Some(value.to_string()),
        None if multipart || form => match from_body(req, multipart, limit).await? {
            Some(found) => found,
            None => return Ok(Verdict::TooLarge),
        },
        None => None,
    };
    let valid = given.is_some_and(|g| bool::from(g.as_bytes().ct_eq(expected.as_bytes())));
    Ok(if valid {
        Verdict::Valid
    } else {
        Verdict::Invalid
    })
}

/// Finds the `csrf` field in a url-encoded or multipart body, then puts the body back. `None`
/// when the body is larger than `limit`.
async fn from_body(
    req: &mut ServiceRequest,
    multipart: bool,
    limit: usize,
) -> Result<Option<Option<String>>, AppError> {
    let Some(body) = read(req.take_payload(), limit).await? else {
        return Ok(None);
    };
    let found = if multipart {
        multipart_field(req.headers(), body.clone()).await
    } else {
        serde_urlencoded::from_bytes::<Vec<(String, String)>>(&body)
            .ok()
            .and_then(|pairs| pairs.into_iter().find(|(k, _)| k == FIELD).map(|(_, v)| v))
    };
    req.set_payload(Payload::Stream {
        payload: Box::pin(futures_util::stream::once(async move { Ok(body) })),
    });
    Ok(Some(found))
}

/// The body, or `None` when it is larger than `limit` (the request is refused as too large).
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
