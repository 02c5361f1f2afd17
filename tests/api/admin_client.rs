//! A dashboard operator over HTTP: keeps the session cookie by hand (so tests can look at it,
//! replay an old one, or drop it), never follows redirects, and reads each page's CSRF token.

use reqwest::header::{COOKIE, SET_COOKIE};
use reqwest::redirect::Policy;
use reqwest::Response;

use crate::helpers::{Deployment, TestApp};

pub const ADMIN_PASSWORD: &str = "correct horse battery staple";

/// A deployment whose built-in admin account has `ADMIN_PASSWORD`.
pub fn with_admin(deployment: Deployment) -> Deployment {
    deployment.set("FISSION_ADMIN_PASSWORD", ADMIN_PASSWORD)
}

pub struct Operator {
    pub base: String,
    pub http: reqwest::Client,
    /// The `fission_admin=…` cookie, as the browser would hold it.
    pub cookie: Option<String>,
}

impl Operator {
    pub fn new(app: &TestApp) -> Operator {
        Operator {
            base: app.address.clone(),
            http: reqwest::Client::builder()
                .redirect(Policy::none())
                .build()
                .expect("client"),
            cookie: None,
        }
    }

    fn keep_cookie(&mut self, response: &Response) {
        for value in response.headers().get_all(SET_COOKIE) {
            let Ok(value) = value.to_str() else { continue };
            if let Some(pair) = value.split(';').next() {
                if pair.starts_with("fission_admin=") {
                    self.cookie = Some(pair.to_string());
                }
            }
        }
    }

    pub async fn get(&mut self, path: &str) -> Response {
        let mut request = self.http.get(format!("{}{path}", self.base));
        if let Some(cookie) = &self.cookie {
            request = request.header(COOKIE, cookie);
        }
        let response = request.send().await.expect("dashboard reachable");
        self.keep_cookie(&response);
        response
    }

    pub async fn post_form(&mut self, path: &str, form: &[(&str, &str)]) -> Response {
        let mut request = self.http.post(format!("{}{path}", self.base)).form(form);
        if let Some(cookie) = &self.cookie {
            request = request.header(COOKIE, cookie);
        }
        let response = request.send().await.expect("dashboard reachable");
        self.keep_cookie(&response);
        response
    }

    /// The CSRF token of the page at `path` (which also sets the session cookie if needed).
    pub async fn csrf(&mut self, path: &str) -> String {
        let html = self.get(path).await.text().await.expect("page");
        csrf_in(&html).unwrap_or_else(|| panic!("no csrf field on {path}"))
    }

    pub async fn login_with(&mut self, username: &str, password: &str) -> Response {
        let csrf = self.csrf("/admin/login").await;
        self.post_form(
            "/admin/login",
            &[
                ("csrf", &csrf),
                ("username", username),
                ("password", password),
            ],
        )
        .await
    }

    /// Signs in as the built-in admin; panics unless it worked.
    pub async fn login(&mut self) {
        let response = self.login_with("admin", ADMIN_PASSWORD).await;
        assert_eq!(response.status(), 303, "login refused");
    }
}

pub fn csrf_in(html: &str) -> Option<String> {
    let start = html.find("name=\"csrf\" value=\"")? + "name=\"csrf\" value=\"".len();
    let end = html[start..].find('"')?;
    Some(html[start..start + end].to_string())
}
