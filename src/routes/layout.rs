//! What every Fission page shares: the layout's data (the sandbox banner) and rendering an
//! askama page into a response.

use actix_web::HttpResponse;

use crate::error::AppError;
use crate::state::AppState;

/// Data `templates/base.html` needs; every page struct has one as its `layout` field.
#[derive(Debug, Clone, Copy)]
pub struct Layout {
    pub sandbox: bool,
}

impl Layout {
    pub fn of(state: &AppState) -> Layout {
        Layout {
            sandbox: state.settings.sandbox,
        }
    }
}

pub fn render(page: &impl askama::Template) -> Result<HttpResponse, AppError> {
    let html = page
        .render()
        .map_err(|e| AppError::Internal(anyhow::Error::new(e).context("rendering a page")))?;
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(html))
}
