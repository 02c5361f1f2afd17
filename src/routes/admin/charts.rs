//! Charts: the page (drawn in the browser by the vendored Chart.js, static/vendor/chart.js)
//! and the JSON it draws from, `/admin/charts.json?days=N`.

use std::collections::BTreeMap;

use actix_web::{web, HttpResponse};
use askama::Template;
use chrono::{Duration, NaiveDate};
use serde::{Deserialize, Serialize};

use super::frame::{cn_day, cn_today, Frame};
use crate::db;
use crate::db::charts::{DailyCount, Funnel};
use crate::error::AppError;
use crate::routes::layout::{render, Layout};
use crate::state::AppState;

#[derive(Template)]
#[template(path = "admin/charts.html")]
struct ChartsPage {
    layout: Layout,
    f: Frame,
    days: i64,
}

#[derive(Deserialize)]
pub struct ChartsQuery {
    days: Option<i64>,
}

fn days_of(q: &ChartsQuery) -> i64 {
    q.days.unwrap_or(30).clamp(7, 366)
}

pub async fn page(
    state: web::Data<AppState>,
    f: Frame,
    q: web::Query<ChartsQuery>,
) -> Result<HttpResponse, AppError> {
    render(&ChartsPage {
        layout: Layout::of(&state),
        f: f.with_section("charts"),
        days: days_of(&q),
    })
}

#[derive(Debug, Serialize)]
pub struct ChartData {
    pub days: Vec<NaiveDate>,
    pub referred: Vec<i64>,
    pub channel: Vec<i64>,
    pub other: Vec<i64>,
    pub funnel: Funnel,
    /// Standing credited invites per follower holding an invite code, up to each day.
    pub k_factor: Vec<Option<f64>>,
}

pub async fn data(
    state: web::Data<AppState>,
    q: web::Query<ChartsQuery>,
) -> Result<HttpResponse, AppError> {
    let n = days_of(&q);
    let since = cn_today() - Duration::days(n - 1);
    let first = cn_day(since);
    let days: Vec<NaiveDate> = (0..n)
        .filter_map(|i| first.checked_add_signed(Duration::days(i)))
        .collect();
    let follows: BTreeMap<NaiveDate, _> = db::charts::daily_follows(&state.pool, since)
        .await?
        .into_iter()
        .map(|d| (d.day, (d.referred, d.channel, d.other)))
        .collect();
    let per_day = |pick: fn(&(i64, i64, i64)) -> i64| -> Vec<i64> {
        days.iter()
            .map(|d| follows.get(d).map_or(0, pick))
            .collect()
    };
    let credits = db::charts::daily_credits(&state.pool).await?;
    let holders = db::charts::daily_code_holders(&state.pool).await?;
    let data = ChartData {
        referred: per_day(|t| t.0),
        channel: per_day(|t| t.1),
        other: per_day(|t| t.2),
        funnel: db::charts::funnel(&state.pool, since).await?,
        k_factor: k_factor(&days, &credits, &holders),
        days,
    };
    Ok(HttpResponse::Ok().json(data))
}

/// Running totals of credits over running totals of code holders, on each of `days`.
fn k_factor(
    days: &[NaiveDate],
    credits: &[DailyCount],
    holders: &[DailyCount],
) -> Vec<Option<f64>> {
    let upto = |series: &[DailyCount], day: NaiveDate| -> i64 {
        series
            .iter()
            .take_while(|d| d.day <= day)
            .map(|d| d.n)
            .sum()
    };
    days.iter()
        .map(|&day| {
            let inviters = upto(holders, day);
            (inviters > 0).then(|| {
                let k = upto(credits, day) as f64 / inviters as f64;
                (k * 100.0).round() / 100.0
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, d).unwrap()
    }

    #[test]
    fn k_factor_is_running_credits_per_code_holder() {
        let credits = [
            DailyCount { day: day(2), n: 3 },
            DailyCount { day: day(3), n: 3 },
        ];
        let holders = [
            DailyCount { day: day(1), n: 2 },
            DailyCount { day: day(3), n: 2 },
        ];
        let k = k_factor(&[day(1), day(2), day(3)], &credits, &holders);
        assert_eq!(k, vec![Some(0.0), Some(1.5), Some(1.5)]);
        assert_eq!(k_factor(&[day(1)], &credits, &[]), vec![None]);
    }
}
