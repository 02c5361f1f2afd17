//! What every dashboard page shares: the language, the CSRF token for its forms, the operator's
//! name for the header — extracted once per request as `Frame` — plus time formatting in the
//! operators' zone (China Standard Time, as WeChat's own console shows).

use std::future::{ready, Ready};

use actix_session::SessionExt;
use actix_web::http::header;
use actix_web::{FromRequest, HttpMessage, HttpRequest};
use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};

use super::csrf;
use super::i18n::{Lang, Msg};
use super::session::SignedIn;
use crate::db::admin::Role;
use crate::db::campaigns::GrantStatus;
use crate::domain::time::china;
use crate::error::AppError;

pub struct Frame {
    pub lang: Lang,
    pub csrf: String,
    pub user: String,
    /// A staff account: the pages show no navigation (it may only redeem).
    pub staff: bool,
    /// The navigation entry to highlight.
    pub section: &'static str,
}

impl Frame {
    /// The message `key` in the page's language.
    pub fn t(&self, key: &str) -> &'static str {
        Msg::get(self.lang, key)
    }

    /// A stored code (`kind`: event, outcome, channel, result, job, status) in words.
    pub fn code(&self, kind: &str, raw: &str) -> String {
        super::i18n::code(self.lang, kind, raw)
    }

    pub fn with_section(mut self, section: &'static str) -> Frame {
        self.section = section;
        self
    }
}

impl FromRequest for Frame {
    type Error = AppError;
    type Future = Ready<Result<Frame, AppError>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let accept = req
            .headers()
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let signed_in = req.extensions().get::<SignedIn>().cloned();
        let frame = csrf::token(&req.get_session()).map(|csrf| Frame {
            lang: Lang::from_accept_language(accept),
            csrf,
            staff: signed_in.as_ref().is_some_and(|u| u.role == Role::Staff),
            user: signed_in.map(|u| u.username).unwrap_or_default(),
            section: "",
        });
        ready(frame)
    }
}

/// Anything that is an instant (templates hand over references of references).
pub trait Moment {
    fn instant(&self) -> DateTime<Utc>;
}

impl Moment for DateTime<Utc> {
    fn instant(&self) -> DateTime<Utc> {
        *self
    }
}

impl<T: Moment + ?Sized> Moment for &T {
    fn instant(&self) -> DateTime<Utc> {
        (**self).instant()
    }
}

/// `2026-11-21 20:05` in China time.
pub fn cn_time(t: impl Moment) -> String {
    t.instant()
        .with_timezone(&china())
        .format("%Y-%m-%d %H:%M")
        .to_string()
}

/// The China calendar day `t` falls on.
pub fn cn_day(t: DateTime<Utc>) -> NaiveDate {
    t.with_timezone(&china()).date_naive()
}

/// The start of today in China time.
pub fn cn_today() -> DateTime<Utc> {
    let now = Utc::now().with_timezone(&china());
    now.date_naive()
        .and_hms_opt(0, 0, 0)
        .and_then(|d| china().from_local_datetime(&d).single())
        .map_or_else(Utc::now, |t| t.with_timezone(&Utc))
}

/// The message key of a reward grant's status.
pub fn grant_status_key(status: &GrantStatus) -> &'static str {
    match status {
        GrantStatus::Granted => "grant.granted",
        GrantStatus::OutOfStock => "grant.out_of_stock",
        GrantStatus::Revoked => "grant.revoked",
    }
}

/// A `datetime-local` input's value for `t`.
pub fn input_time(t: &DateTime<Utc>) -> String {
    t.with_timezone(&china())
        .format("%Y-%m-%dT%H:%M")
        .to_string()
}

/// Reads a `datetime-local` value (China time).
pub fn parse_input_time(value: &str) -> Option<DateTime<Utc>> {
    let naive = NaiveDateTime::parse_from_str(value.trim(), "%Y-%m-%dT%H:%M")
        .or_else(|_| NaiveDateTime::parse_from_str(value.trim(), "%Y-%m-%dT%H:%M:%S"))
        .ok()?;
    china()
        .from_local_datetime(&naive)
        .single()
        .map(|t| t.with_timezone(&Utc))
}

/// Midnight (China time) starting the day of a `date` input's value.
pub fn parse_input_date(value: &str) -> Option<DateTime<Utc>> {
    let date = NaiveDate::parse_from_str(value.trim(), "%Y-%m-%d").ok()?;
    china()
        .from_local_datetime(&date.and_hms_opt(0, 0, 0)?)
        .single()
        .map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_round_trip_in_china_time() {
        let t = parse_input_time("2026-11-21T08:30").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-11-21T00:30:00+00:00");
        assert_eq!(input_time(&t), "2026-11-21T08:30");
        assert_eq!(cn_time(t), "2026-11-21 08:30");
        let d = parse_input_date("2026-11-21").unwrap();
        assert_eq!(d.to_rfc3339(), "2026-11-20T16:00:00+00:00");
        assert!(parse_input_time("yesterday").is_none());
    }
}
