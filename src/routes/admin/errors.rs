//! Errors as a person sees them: a page in the dashboard's language for a browser, JSON for a
//! script. A handler's `AppError` is turned into the page here, after the fact, so handlers
//! keep returning one error type.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::{web, HttpResponse};
use askama::Template;

use super::i18n::{Lang, Msg};
use crate::error::AppError;
use crate::routes::layout::Layout;
use crate::state::AppState;

#[derive(Template)]
#[template(path = "admin/error.html")]
struct ErrorPage {
    layout: Layout,
    lang_tag: &'static str,
    title: &'static str,
    message: String,
    status: u16,
    back: &'static str,
}

/// Replaces a handler's error answer with an HTML page when the client asked for HTML.
pub async fn html_errors(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let wants_html = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"));
    let lang = req
        .headers()
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .map_or(Lang::Zh, Lang::from_accept_language);
    let layout = req
        .app_data::<web::Data<AppState>>()
        .map(|state| Layout::of(state))
        .unwrap_or(Layout { sandbox: false });
    let res = next.call(req).await?.map_into_boxed_body();
    let status = res.status();
    let Some(app_error) = res
        .response()
        .error()
        .and_then(|e| e.as_error::<AppError>())
        .filter(|_| wants_html)
    else {
        return Ok(res);
    };
    let message = match app_error {
        AppError::Internal(_) => Msg::get(lang, "error.internal").to_string(),
        other => other.to_string(),
    };
    let page = ErrorPage {
        layout,
        lang_tag: match lang {
            Lang::Zh => "zh-CN",
            Lang::En => "en",
        },
        title: Msg::get(lang, "error.title"),
        message,
        status: status.as_u16(),
        back: Msg::get(lang, "error.back"),
    };
    let html = match page.render() {
        Ok(html) => html,
        // The JSON answer is still an answer.
        Err(_) => return Ok(res),
    };
    let (req, _) = res.into_parts();
    let response = HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .body(html);
    Ok(ServiceResponse::new(req, response))
}
