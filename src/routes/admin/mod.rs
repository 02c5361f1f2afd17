//! `/admin`: the operators' dashboard. `ROUTES` is the one route table (tests walk it, so a new
//! route is covered by the access tests automatically), and `guard` — applied once to the whole
//! scope — is the only place sign-in, roles and CSRF are checked.

mod campaign_form;
mod campaigns;
mod channels;
mod charts;
mod csrf;
mod errors;
mod export;
mod frame;
mod health;
mod home;
mod i18n;
mod leaderboard;
mod login;
mod poster_preview;
mod redeem;
mod risk;
mod session;
mod uploads;
mod users;
mod webhooks;
mod workbook;

use actix_session::storage::CookieSessionStore;
use actix_session::SessionMiddleware;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ResourceDef, ServiceRequest, ServiceResponse};
use actix_web::http::{header, Method};
use actix_web::middleware::{from_fn, Next};
use actix_web::{web, HttpMessage, HttpResponse};

use crate::db::admin::Role;
use crate::error::AppError;
use crate::state::AppState;

pub use frame::{cn_time, grant_status_key, Frame};
pub use i18n::Lang;
pub use leaderboard::selected_campaign;
pub use risk::{action_key as risk_action_key, policy_key as risk_policy_key};
pub use session::SignedIn;

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// The login form: anyone (its POST still needs the session's CSRF token).
    Public,
    /// A signed-in operator with the admin role.
    Session,
    /// A signed-in operator of either role: redeeming rewards (all a staff account may do).
    Staff,
    /// A signed-in admin, or a script with `Authorization: Bearer $FISSION_ADMIN_TOKEN`.
    SessionOrBearer,
}

#[derive(Debug, Clone, Copy)]
pub struct RouteInfo {
    pub method: &'static str,
    /// Under `/admin`, in actix's pattern syntax.
    pub path: &'static str,
    pub access: Access,
}

macro_rules! admin_routes {
    ($($method:ident $path:literal $access:ident => $handler:path;)*) => {
        /// Every route under `/admin`.
        pub const ROUTES: &[RouteInfo] = &[$(RouteInfo {
            method: stringify!($method),
            path: $path,
            access: Access::$access,
        }),*];

        fn register(cfg: &mut web::ServiceConfig) {
            $(cfg.route($path, web::$method().to($handler));)*
        }
    };
}

admin_routes! {
    get  "/login" Public => login::form;
    post "/login" Public => login::submit;
    post "/logout" Staff => login::logout;
    get  "/redeem" Staff => redeem::start;
    get  "/redeem/{token}" Staff => redeem::page;
    post "/redeem/{token}" Staff => redeem::submit;
    get  "" Session => home::page;
    get  "/leaderboard" Session => leaderboard::page;
    get  "/users/{openid}" Session => users::page;
    get  "/campaigns" Session => campaigns::list;
    get  "/campaigns/new" Session => campaigns::new_form;
    post "/campaigns" Session => campaigns::create;
    get  "/campaigns/{id}" Session => campaigns::edit_form;
    post "/campaigns/{id}" Session => campaigns::update;
    get  "/campaigns/{id}/end" Session => campaigns::end_form;
    post "/campaigns/{id}/end" Session => campaigns::end;
    post "/campaigns/{id}/poster-background" Session => uploads::poster_background;
    post "/campaigns/{id}/tiers/{tier}/codes" Session => uploads::reward_codes;
    get  "/campaigns/{id}/poster-preview.png" Session => poster_preview::image;
    get  "/campaigns/{id}/risk" Session => risk::policy_form;
    post "/campaigns/{id}/risk" Session => risk::save_policy;
    get  "/risk" Session => risk::queue;
    post "/risk" Session => risk::decide;
    get  "/risk/{id}/{openid}" Session => risk::inviter;
    get  "/channels" Session => channels::page;
    post "/channels" Session => channels::create;
    get  "/channels/{id}/qr.png" Session => channels::qr;
    get  "/charts" Session => charts::page;
    get  "/charts.json" Session => charts::data;
    get  "/health" Session => health::page;
    post "/outbox/{id}/retry" Session => health::retry;
    get  "/webhooks" Session => webhooks::page;
    post "/webhooks" Session => webhooks::create;
    post "/webhooks/{id}/delete" Session => webhooks::delete;
    post "/webhooks/{id}/test" Session => webhooks::test;
    post "/webhooks/deliveries/{id}/replay" Session => webhooks::replay;
    get  "/export/referrals.csv" SessionOrBearer => export::referrals_csv;
    get  "/export/leaderboard.csv" SessionOrBearer => export::leaderboard_csv;
    get  "/export/referrals.xlsx" SessionOrBearer => workbook::referrals;
    get  "/export/leaderboard.xlsx" SessionOrBearer => workbook::leaderboard;
}

/// Mounts the dashboard under `/admin`, with the operator's own session cookie.
pub fn configure(cfg: &mut web::ServiceConfig, session: SessionMiddleware<CookieSessionStore>) {
    cfg.service(
        web::scope("/admin")
            .wrap(from_fn(guard))
            .wrap(from_fn(errors::html_errors))
            .wrap(session)
            .app_data(web::FormConfig::default().limit(csrf::FORM_LIMIT))
            .configure(register),
    );
}

/// How the route a request names may be called; unknown paths need a session (a 404 is only
/// shown to operators).
fn access_of(method: &Method, path: &str) -> Access {
    use std::sync::LazyLock;
    static DEFS: LazyLock<Vec<(RouteInfo, ResourceDef)>> = LazyLock::new(|| {
        ROUTES
            .iter()
            .map(|r| (*r, ResourceDef::new(format!("/admin{}", r.path))))
            .collect()
    });
    DEFS.iter()
        .find(|(r, def)| r.method.eq_ignore_ascii_case(method.as_str()) && def.is_match(path))
        .map_or(Access::Session, |(r, _)| r.access)
}

/// What body a route takes: the public login form is small, and only the upload routes take
/// multipart.
fn body_of(access: Access, path: &str) -> csrf::Body {
    if access == Access::Public {
        csrf::Body::Login
    } else if path.ends_with("/poster-background") || path.ends_with("/codes") {
        csrf::Body::Upload
    } else {
        csrf::Body::Form
    }
}

/// A staff account may redeem rewards and sign out, nothing else: the dashboard's home sends it
/// to the redemption page, anything else is refused (a page saying why, for a browser).
fn staff_refusal(user: &SignedIn, access: Access, req: &ServiceRequest) -> Option<HttpResponse> {
    if user.role != Role::Staff || matches!(access, Access::Public | Access::Staff) {
        return None;
    }
    if is_read(req.method()) && req.path() == "/admin" {
        return Some(
            HttpResponse::Found()
                .insert_header((header::LOCATION, "/admin/redeem"))
                .finish(),
        );
    }
    let lang = req
        .headers()
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .map_or(Lang::Zh, Lang::from_accept_language);
    Some(HttpResponse::from_error(AppError::Forbidden(
        i18n::Msg::get(lang, "staff.refused").to_string(),
    )))
}

fn is_read(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD)
}

/// Sign-in and CSRF for every `/admin` route. Without a session a page redirects to the login
/// form and anything else is 401; a state-changing request must carry the session's CSRF token.
async fn guard(
    mut req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let state = req
        .app_data::<web::Data<AppState>>()
        .cloned()
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("application state missing")))?;
    let access = access_of(req.method(), req.path());
    let signed_in = session::signed_in(&state, &req).await?;
    if signed_in.is_none() && access != Access::Public {
        let bearer = access == Access::SessionOrBearer
            && crate::routes::api::has_admin_token(&state, req.headers()).unwrap_or(false);
        if !bearer {
            let page = matches!(access, Access::Session | Access::Staff);
            let response = if is_read(req.method()) && page {
                HttpResponse::Found()
                    .insert_header((header::LOCATION, login::login_url(req.path())))
                    .finish()
            } else {
                actix_web::ResponseError::error_response(&AppError::Unauthorized)
            };
            return Ok(req.into_response(response).map_into_right_body());
        }
    }
    if let Some(refused) = signed_in
        .as_ref()
        .and_then(|user| staff_refusal(user, access, &req))
    {
        return Ok(req.into_response(refused).map_into_right_body());
    }
    if !is_read(req.method()) {
        let body = body_of(access, req.path());
        let refused = match csrf::check(&mut req, body).await? {
            csrf::Verdict::Valid => None,
            csrf::Verdict::Invalid => Some(
                HttpResponse::Forbidden()
                    .body("CSRF token missing or wrong: reload the page and try again"),
            ),
            csrf::Verdict::Unsupported => {
                Some(HttpResponse::UnsupportedMediaType().body("this form takes no uploads"))
            }
            csrf::Verdict::TooLarge => {
                Some(HttpResponse::PayloadTooLarge().body("the form is too large"))
            }
        };
        if let Some(mut response) = refused {
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                header::HeaderValue::from_static("text/plain; charset=utf-8"),
            );
            return Ok(req.into_response(response).map_into_right_body());
        }
    }
    if let Some(user) = signed_in {
        req.extensions_mut().insert(user);
    }
    Ok(next.call(req).await?.map_into_left_body())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_has_a_known_access_and_method() {
        for r in ROUTES {
            assert!(matches!(r.method, "get" | "post"), "{r:?}");
            let path = format!(
                "/admin{}",
                r.path
                    .replace("{id}", "1")
                    .replace("{tier}", "2")
                    .replace("{token}", "abc")
            );
            let method = Method::from_bytes(r.method.to_uppercase().as_bytes()).unwrap();
            if !r.path.contains("{openid}") {
                assert_eq!(access_of(&method, &path), r.access, "{path}");
            }
        }
        assert_eq!(access_of(&Method::GET, "/admin/nope"), Access::Session);
        assert_eq!(access_of(&Method::POST, "/admin/login"), Access::Public);
        assert_eq!(
            access_of(&Method::POST, "/admin/export/referrals.csv"),
            Access::Session
        );
    }
}
