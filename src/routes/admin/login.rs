//! Signing in and out. A successful login starts a new session (see `session::start`); failures
//! are counted per client address and per account (see `auth::login`).

use actix_session::Session;
use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpMessage, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;

use super::frame::Frame;
use super::session::{self, SignedIn};
use crate::auth::{self, LoginOutcome};
use crate::db::admin::Role;
use crate::error::AppError;
use crate::routes::layout::{render, Layout};
use crate::state::AppState;

#[derive(Template)]
#[template(path = "admin/login.html")]
struct LoginPage {
    layout: Layout,
    f: Frame,
    username: String,
    next: String,
    error: Option<&'static str>,
}

#[derive(Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

/// Where to go after signing in: only a dashboard path, never another site.
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with("/admin") && !n.contains("//") && !n.contains('\\') => {
            n.to_string()
        }
        _ => "/admin".to_string(),
    }
}

/// The login form's address, remembering the page that was asked for.
pub fn login_url(wanted: &str) -> String {
    let next = safe_next(Some(wanted));
    if next == "/admin" {
        return "/admin/login".into();
    }
    format!(
        "/admin/login?next={}",
        percent_encoding::utf8_percent_encode(&next, percent_encoding::NON_ALPHANUMERIC)
    )
}

pub async fn form(
    state: web::Data<AppState>,
    f: Frame,
    q: web::Query<NextQuery>,
) -> Result<HttpResponse, AppError> {
    render(&LoginPage {
        layout: Layout::of(&state),
        f,
        username: String::new(),
        next: safe_next(q.next.as_deref()),
        error: None,
    })
}

#[derive(Deserialize)]
pub struct LoginForm {
    username: String,
    password: String,
    next: Option<String>,
}

pub async fn submit(
    state: web::Data<AppState>,
    req: HttpRequest,
    session: Session,
    f: Frame,
    form: web::Form<LoginForm>,
) -> Result<HttpResponse, AppError> {
    let form = form.into_inner();
    // The peer address, or the client a trusted proxy names; never X-Forwarded-For alone: a
    // header anyone can set would let an attacker pick a fresh "address" for every guess.
    let client = crate::telemetry::client_ip(&req)
        .map(|ip| ip.to_string())
        .unwrap_or_else(|| "unknown".into());
    let outcome = auth::login(&state, &client, &form.username, form.password.into()).await?;
    let (status, error) = match outcome {
        LoginOutcome::Ok(user) => {
            session::start(&session, &user)?;
            tracing::info!(username = %user.username, "operator signed in");
            let mut next = safe_next(form.next.as_deref());
            // A staff account can only redeem: a scanned code's page, or how to scan one.
            if user.role == Role::Staff && !next.starts_with("/admin/redeem/") {
                next = "/admin/redeem".into();
            }
            return Ok(HttpResponse::SeeOther()
                .insert_header((header::LOCATION, next))
                .finish());
        }
        LoginOutcome::WrongPassword => (StatusCode::UNAUTHORIZED, "login.wrong"),
        LoginOutcome::Throttled => (StatusCode::TOO_MANY_REQUESTS, "login.throttled"),
        LoginOutcome::Busy => (StatusCode::SERVICE_UNAVAILABLE, "login.busy"),
    };
    let mut response = render(&LoginPage {
        layout: Layout::of(&state),
        f,
        username: form.username,
        next: safe_next(form.next.as_deref()),
        error: Some(error),
    })?;
    *response.status_mut() = status;
    Ok(response)
}

/// Ends every session of the account (cookie sessions cannot be deleted one by one) and this
/// browser's cookie.
pub async fn logout(
    state: web::Data<AppState>,
    req: HttpRequest,
    session: Session,
) -> Result<HttpResponse, AppError> {
    let user = req.extensions().get::<SignedIn>().cloned();
    if let Some(user) = user {
        crate::auth::sign_out_everywhere(&state.pool, user.id).await?;
    }
    session.purge();
    Ok(HttpResponse::SeeOther()
        .insert_header((header::LOCATION, "/admin/login"))
        .finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_dashboard_paths_are_followed_after_login() {
        assert_eq!(safe_next(Some("/admin/campaigns")), "/admin/campaigns");
        for bad in [
            "https://evil.example",
            "//evil.example",
            "/admin//evil",
            "/other",
        ] {
            assert_eq!(safe_next(Some(bad)), "/admin", "{bad}");
        }
        assert_eq!(login_url("/admin"), "/admin/login");
        assert_eq!(
            login_url("/admin/health"),
            "/admin/login?next=%2Fadmin%2Fhealth"
        );
    }
}
