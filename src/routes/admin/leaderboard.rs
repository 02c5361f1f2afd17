//! The leaderboard: one campaign or every campaign summed, optionally only credits made in a
//! date range, searchable by openid or nickname, 50 to a page.

use std::collections::HashMap;

use actix_web::{web, HttpResponse};
use askama::Template;
use chrono::{Duration, Utc};
use serde::Deserialize;

use super::frame::{parse_input_date, Frame};
use crate::db;
use crate::db::campaigns::Campaign;
use crate::db::referrals::LeaderRow;
use crate::error::AppError;
use crate::routes::layout::{render, Layout};
use crate::state::AppState;

const PAGE_SIZE: i64 = 50;

#[derive(Debug, Default, Deserialize)]
pub struct BoardQuery {
    /// A campaign id, or `all`; absent = the campaign running now.
    pub campaign: Option<String>,
    #[serde(default)]
    pub from: String,
    #[serde(default)]
    pub to: String,
    #[serde(default)]
    pub q: String,
    pub page: Option<i64>,
}

#[derive(Template)]
#[template(path = "admin/leaderboard.html")]
struct LeaderboardPage {
    layout: Layout,
    f: Frame,
    campaigns: Vec<Campaign>,
    /// The campaign shown, `None` for all campaigns.
    selected: Option<i64>,
    from: String,
    to: String,
    q: String,
    date_error: bool,
    rows: Vec<LeaderRow>,
    page: i64,
    has_next: bool,
    /// The query string of this view without `page`, for the paging and export links.
    query: String,
    /// Rows whose inviter is flagged, held or blocked: openid -> message key.
    marks: HashMap<String, &'static str>,
}

impl LeaderboardPage {
    fn mark(&self, openid: &str) -> Option<&'static str> {
        self.marks.get(openid).copied()
    }

    fn is_selected(&self, id: &i64) -> bool {
        self.selected == Some(*id)
    }
}

/// The campaign a query names: `Some(id)`, or `None` for all campaigns.
pub async fn selected_campaign(
    state: &AppState,
    raw: Option<&str>,
) -> Result<Option<i64>, AppError> {
    match raw.map(str::trim) {
        Some("all") => Ok(None),
        Some(id) if !id.is_empty() => {
            let id = id
                .parse::<i64>()
                .map_err(|_| AppError::BadRequest("campaign must be an id or \"all\"".into()))?;
            Ok(Some(
                crate::routes::campaign_or_active(&state.pool, Some(id))
                    .await?
                    .id,
            ))
        }
        _ => Ok(db::campaigns::active_at(&state.pool, Utc::now())
            .await?
            .map(|c| c.id)),
    }
}

pub async fn page(
    state: web::Data<AppState>,
    f: Frame,
    q: web::Query<BoardQuery>,
) -> Result<HttpResponse, AppError> {
    let q = q.into_inner();
    let selected = selected_campaign(&state, q.campaign.as_deref()).await?;
    let page = q.page.unwrap_or(1).clamp(1, 100_000);
    let search = q.q.trim().to_string();
    let from = (!q.from.is_empty()).then(|| parse_input_date(&q.from));
    let to = (!q.to.is_empty()).then(|| parse_input_date(&q.to));
    let date_error = matches!(from, Some(None)) || matches!(to, Some(None));
    let offset = (page - 1) * PAGE_SIZE;
    // One row more than shown tells whether there is a next page without counting them all.
    let limit = PAGE_SIZE + 1;
    let ranged = !date_error && (from.is_some() || to.is_some());
    let mut rows = if ranged {
        let start = from.flatten().unwrap_or(chrono::DateTime::UNIX_EPOCH);
        // The "to" day is included: the range ends at the next midnight.
        let end = to
            .flatten()
            .map_or_else(|| Utc::now() + Duration::days(1), |d| d + Duration::days(1));
        db::dashboard::board_between(&state.pool, selected, start, end, &search, limit, offset)
            .await?
    } else if let Some(id) = selected {
        if search.is_empty() {
            db::referrals::leaderboard(&state.pool, id, limit, offset).await?
        } else {
            db::dashboard::board_search(&state.pool, id, &search, limit, offset).await?
        }
    } else {
        db::dashboard::board(&state.pool, selected, &search, limit, offset).await?
    };
    let has_next = rows.len() as i64 > PAGE_SIZE;
    rows.truncate(PAGE_SIZE as usize);
    let shown: Vec<&str> = rows.iter().map(|r| r.openid.as_str()).collect();
    let marks = db::risk::statuses(&state.pool, selected, &shown)
        .await?
        .into_iter()
        .map(|(openid, status)| (openid, super::risk::status_key(status.as_str())))
        .collect();
    let campaign_param = selected.map_or("all".to_string(), |id| id.to_string());
    let query = serde_urlencoded::to_string([
        ("campaign", campaign_param.as_str()),
        ("from", q.from.as_str()),
        ("to", q.to.as_str()),
        ("q", search.as_str()),
    ])
    .unwrap_or_default();
    render(&LeaderboardPage {
        layout: Layout::of(&state),
        f: f.with_section("leaderboard"),
        campaigns: db::campaigns::list(&state.pool).await?,
        selected,
        from: q.from,
        to: q.to,
        q: search,
        date_error,
        rows,
        page,
        has_next,
        query,
        marks,
    })
}
