//! The dashboard's front page: today's follows, the running campaign's standing, the top ten,
//! and anything that needs an operator (failed messages, the permanent-code quota).

use actix_web::{web, HttpResponse};
use askama::Template;
use chrono::Utc;

use super::frame::{cn_today, Frame};
use super::health::{permanent_cap, quota_warning};
use crate::db;
use crate::db::campaigns::Campaign;
use crate::db::outbox::JobStatus;
use crate::db::referrals::LeaderRow;
use crate::error::AppError;
use crate::routes::layout::{render, Layout};
use crate::state::AppState;

#[derive(Template)]
#[template(path = "admin/home.html")]
struct HomePage {
    layout: Layout,
    f: Frame,
    campaign: Option<Campaign>,
    inviters: i64,
    credits: i64,
    follows_today: i64,
    referred_today: i64,
    channel_today: i64,
    failed: i64,
    pending: i64,
    quota_used: i64,
    quota_cap: i64,
    quota_warn: bool,
    top: Vec<LeaderRow>,
}

pub async fn page(state: web::Data<AppState>, f: Frame) -> Result<HttpResponse, AppError> {
    let pool = &state.pool;
    let campaign = db::campaigns::active_at(pool, Utc::now()).await?;
    let ((inviters, credits), top) = match &campaign {
        Some(c) => (
            db::dashboard::campaign_totals(pool, c.id).await?,
            db::referrals::leaderboard(pool, c.id, 10, 0).await?,
        ),
        None => ((0, 0), Vec::new()),
    };
    let (follows_today, referred_today, channel_today) =
        db::dashboard::follows_since(pool, cn_today()).await?;
    let counts = db::outbox::counts(pool).await?;
    let count_of = |status: JobStatus| {
        counts
            .iter()
            .find(|(s, _)| *s == status)
            .map_or(0, |(_, n)| *n)
    };
    let quota_used = db::codes::permanent_in_use(pool).await?;
    render(&HomePage {
        layout: Layout::of(&state),
        f: f.with_section("home"),
        campaign,
        inviters,
        credits,
        follows_today,
        referred_today,
        channel_today,
        failed: count_of(JobStatus::Failed),
        pending: count_of(JobStatus::Pending),
        quota_used,
        quota_cap: permanent_cap(&state),
        quota_warn: quota_warning(quota_used, permanent_cap(&state)),
        top,
    })
}
