//! Health of the WeChat integration: the access_token, API calls and errors in the last 24 h,
//! the permanent-code quota, the outbox (with a retry button for failed messages) and the
//! latest pushes.

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use askama::Template;
use chrono::{DateTime, Duration, Utc};

use super::frame::Frame;
use crate::db;
use crate::db::events::EventRow;
use crate::db::outbox::{FailedJob, JobStatus};
use crate::db::wechat_calls::CallCount;
use crate::error::AppError;
use crate::routes::layout::{render, Layout};
use crate::state::AppState;

/// WeChat's access_token lifetime: a token's age is this minus what it has left.
const TOKEN_LIFETIME_SECS: i64 = 7200;

/// The permanent codes Fission may create: `FISSION_PERMANENT_QUOTA` (at most WeChat's cap).
pub fn permanent_cap(state: &AppState) -> i64 {
    i64::from(state.settings.permanent_quota).max(1)
}

/// Above 80% of the cap, operators should plan for temporary codes.
pub fn quota_warning(used: i64, cap: i64) -> bool {
    used * 100 > cap * 80
}

pub struct TokenView {
    pub age_minutes: i64,
    pub expires_in_minutes: i64,
    pub refresh_in_minutes: i64,
}

#[derive(Template)]
#[template(path = "admin/health.html")]
struct HealthPage {
    layout: Layout,
    f: Frame,
    token: Option<TokenView>,
    token_error: bool,
    stable_token: bool,
    calls: Vec<CallCount>,
    total_calls: i64,
    error_calls: i64,
    quota_used: i64,
    quota_cap: i64,
    quota_percent: i64,
    quota_warn: bool,
    outbox: Vec<(JobStatus, i64)>,
    messages: Vec<MessageRow>,
    failed: Vec<FailedJob>,
    events: Vec<EventRow>,
    retried: bool,
}

/// Notices by channel and outcome: the last hour and the last 24 hours.
struct MessageRow {
    channel: String,
    outcome: String,
    last_hour: i64,
    last_day: i64,
    /// Credits the day's messages carried (more than the messages: they were coalesced).
    credits: i64,
}

fn message_rows(
    day: Vec<(String, String, i64, i64)>,
    hour: Vec<(String, String, i64, i64)>,
) -> Vec<MessageRow> {
    day.into_iter()
        .map(|(channel, outcome, n, credits)| MessageRow {
            last_hour: hour
                .iter()
                .find(|h| h.0 == channel && h.1 == outcome)
                .map_or(0, |h| h.2),
            channel,
            outcome,
            last_day: n,
            credits,
        })
        .collect()
}

#[derive(serde::Deserialize)]
pub struct HealthQuery {
    retried: Option<String>,
}

fn token_view(now: DateTime<Utc>, refresh_at: i64, expires_at: i64) -> TokenView {
    let left = expires_at - now.timestamp();
    TokenView {
        age_minutes: ((TOKEN_LIFETIME_SECS - left) / 60).max(0),
        expires_in_minutes: left.max(0) / 60,
        refresh_in_minutes: (refresh_at - now.timestamp()).max(0) / 60,
    }
}

pub async fn page(
    state: web::Data<AppState>,
    f: Frame,
    q: web::Query<HealthQuery>,
) -> Result<HttpResponse, AppError> {
    let pool = &state.pool;
    let (token, token_error) = match state.wechat.tokens().status().await {
        Ok(status) => (status.map(|(r, e)| token_view(Utc::now(), r, e)), false),
        Err(e) => {
            tracing::warn!(error = %e, "reading the token status");
            (None, true)
        }
    };
    let calls = db::wechat_calls::since(pool, Utc::now() - Duration::hours(24)).await?;
    let total_calls = calls.iter().map(|c| c.calls).sum();
    let error_calls = calls
        .iter()
        .filter(|c| c.errcode != 0)
        .map(|c| c.calls)
        .sum();
    let quota_used = db::codes::permanent_in_use(pool).await?;
    let quota_cap = permanent_cap(&state);
    render(&HealthPage {
        layout: Layout::of(&state),
        f: f.with_section("health"),
        token,
        token_error,
        stable_token: state.settings.wechat.use_stable_token,
        calls,
        total_calls,
        error_calls,
        quota_used,
        quota_cap,
        quota_percent: (quota_used * 100 / quota_cap).min(100),
        quota_warn: quota_warning(quota_used, quota_cap),
        outbox: db::outbox::counts(pool).await?,
        messages: message_rows(
            db::notices::log_summary(pool, Utc::now() - Duration::hours(24)).await?,
            db::notices::log_summary(pool, Utc::now() - Duration::hours(1)).await?,
        ),
        failed: db::outbox::failed(pool, 50).await?,
        events: db::dashboard::recent_events(pool, 30).await?,
        retried: q.retried.is_some(),
    })
}

/// Puts a failed message back in the queue and wakes this instance's worker.
pub async fn retry(
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    if !crate::jobs::outbox::retry_failed(&state, *id).await? {
        return Err(AppError::NotFound("no failed message with that id".into()));
    }
    Ok(HttpResponse::SeeOther()
        .insert_header((header::LOCATION, "/admin/health?retried=1"))
        .finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_rows_pair_the_hour_with_the_day() {
        let day = vec![
            ("custom".to_string(), "sent".to_string(), 5, 12),
            ("custom".to_string(), "45047".to_string(), 1, 0),
        ];
        let hour = vec![("custom".to_string(), "sent".to_string(), 2, 3)];
        let rows = message_rows(day, hour);
        assert_eq!(
            (rows[0].last_hour, rows[0].last_day, rows[0].credits),
            (2, 5, 12)
        );
        assert_eq!((rows[1].last_hour, rows[1].last_day), (0, 1));
    }

    #[test]
    fn quota_warns_above_eighty_percent() {
        assert!(!quota_warning(80_000, 100_000));
        assert!(quota_warning(80_001, 100_000));
        assert!(quota_warning(33, 40));
    }

    #[test]
    fn token_age_counts_from_wechat_issuing_it() {
        let now = Utc::now();
        let t = token_view(now, now.timestamp() + 6000, now.timestamp() + 6300);
        assert_eq!(t.age_minutes, 15);
        assert_eq!(t.expires_in_minutes, 105);
        assert_eq!(t.refresh_in_minutes, 100);
    }
}
