//! What every response and every request body get, whatever the route: the security headers,
//! and a deadline for the body to arrive (a client that sends headers and then trickles or
//! stalls would otherwise hold its buffer and a worker's attention for as long as it likes).

use std::time::Duration;

use actix_web::body::MessageBody;
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage};
use futures_util::StreamExt;

use crate::state::AppState;

/// Scripts and styles from this origin only, and no inline script (the pages have none; inline
/// styles stay allowed for the progress bars' widths). No page may be framed. Images include
/// `data:` for the browsers' own placeholders.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
    style-src 'self' 'unsafe-inline'; img-src 'self' data:; object-src 'none'; \
    base-uri 'none'; frame-ancestors 'none'";

/// The invite page also loads WeChat's JS-SDK (for the `wx-open-subscribe` button) from
/// WeChat's script hosts; nothing else differs.
const INVITE_CONTENT_SECURITY_POLICY: &str = "default-src 'self'; \
    script-src 'self' https://res.wx.qq.com https://res2.wx.qq.com; \
    style-src 'self' 'unsafe-inline'; img-src 'self' data:; object-src 'none'; \
    base-uri 'none'; frame-ancestors 'none'";

/// Adds the security headers to every response; the dashboard (pages, images and exports) is
/// never stored by a browser or proxy cache.
pub async fn headers(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let dashboard = req.path() == "/admin" || req.path().starts_with("/admin/");
    let policy = if req.path() == "/invite" {
        INVITE_CONTENT_SECURITY_POLICY
    } else {
        CONTENT_SECURITY_POLICY
    };
    let mut response = next.call(req).await?;
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, policy),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "same-origin"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    if dashboard {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    Ok(response)
}

/// The request body must have arrived within `FISSION_BODY_TIMEOUT_SECS` of the request's
/// start; past that, reading it fails (the handler answers 400 and the connection closes).
pub async fn body_deadline(
    mut req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let limit = req
        .app_data::<web::Data<AppState>>()
        .map_or(30, |state| state.settings.body_timeout_secs);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(limit);
    let payload = req.take_payload();
    let stream = futures_util::stream::unfold(Some(payload), move |payload| async move {
        let mut payload = payload?;
        match tokio::time::timeout_at(deadline, payload.next()).await {
            Ok(Some(chunk)) => Some((chunk, Some(payload))),
            Ok(None) => None,
            Err(_) => Some((Err(timed_out()), None)),
        }
    });
    req.set_payload(Payload::Stream {
        payload: Box::pin(stream),
    });
    next.call(req).await
}

fn timed_out() -> PayloadError {
    PayloadError::Io(std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        "the request body did not arrive in time",
    ))
}
