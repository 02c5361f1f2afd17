//! The two cookie sessions: a follower's on `/invite` and an operator's on `/admin`. They are
//! separate cookies (own names, own paths), so in a browser both use, signing in to one never
//! signs the other out.

use actix_session::config::CookieContentSecurity;
use actix_session::storage::CookieSessionStore;
use actix_session::SessionMiddleware;
use actix_web::cookie::{Key, SameSite};

/// The follower's cookie, sent only to `/invite…`.
pub const FOLLOWER_COOKIE: &str = "fission_invite";
/// The operator's cookie, sent only to `/admin…`.
pub const OPERATOR_COOKIE: &str = "fission_admin";

#[derive(Clone)]
pub struct Cookies {
    key: Key,
    secure: bool,
}

impl Cookies {
    /// `secure`: the public URL is https, so browsers may send the cookies only over TLS.
    pub fn new(key: Key, secure: bool) -> Cookies {
        Cookies { key, secure }
    }

    pub fn follower(&self) -> SessionMiddleware<CookieSessionStore> {
        self.session(FOLLOWER_COOKIE, "/invite")
    }

    pub fn operator(&self) -> SessionMiddleware<CookieSessionStore> {
        self.session(OPERATOR_COOKIE, "/admin")
    }

    fn session(&self, name: &str, path: &str) -> SessionMiddleware<CookieSessionStore> {
        SessionMiddleware::builder(CookieSessionStore::default(), self.key.clone())
            .cookie_name(name.to_string())
            .cookie_path(path.to_string())
            .cookie_http_only(true)
            .cookie_secure(self.secure)
            .cookie_same_site(SameSite::Lax)
            .cookie_content_security(CookieContentSecurity::Private)
            .build()
    }
}
