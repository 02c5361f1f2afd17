//! One follower: who invited them, whom they invited (and which credits were revoked), their
//! rewards and the pushes WeChat sent about them.

use actix_web::{web, HttpResponse};
use askama::Template;

use super::frame::Frame;
use crate::db;
use crate::db::dashboard::{InviteeLine, RewardLine};
use crate::db::events::EventRow;
use crate::db::risk::DecisionRow;
use crate::db::users::UserRow;
use crate::domain::OpenId;
use crate::error::AppError;
use crate::routes::layout::{render, Layout};
use crate::state::AppState;

#[derive(Template)]
#[template(path = "admin/user.html")]
struct UserPage {
    layout: Layout,
    f: Frame,
    openid: String,
    user: Option<UserRow>,
    invited_by: Option<String>,
    counts: Vec<(String, i32)>,
    invitees: Vec<InviteeLine>,
    revoked: Vec<InviteeLine>,
    rewards: Vec<RewardLine>,
    events: Vec<EventRow>,
    /// Risk decisions about the follower as an inviter, newest first (each links to the
    /// campaign's review page).
    decisions: Vec<DecisionRow>,
}

pub async fn page(
    state: web::Data<AppState>,
    f: Frame,
    openid: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let openid = OpenId::parse(&openid)?;
    let id = openid.as_str();
    let user = db::users::get(&state.pool, &openid).await?;
    let invitees = db::dashboard::invitees(&state.pool, id, 500).await?;
    let events = db::events::for_user(&state.pool, id, 200).await?;
    if user.is_none() && invitees.is_empty() && events.is_empty() {
        return Err(AppError::NotFound("no such follower".into()));
    }
    let revoked = invitees
        .iter()
        .filter(|i| i.revoked_at.is_some())
        .cloned()
        .collect();
    render(&UserPage {
        layout: Layout::of(&state),
        f: f.with_section("leaderboard"),
        openid: id.to_string(),
        invited_by: db::referrals::inviter_of(&state.pool, &openid).await?,
        counts: db::dashboard::counts_by_campaign(&state.pool, id).await?,
        rewards: db::dashboard::rewards(&state.pool, id).await?,
        decisions: db::risk::decisions_of(&state.pool, None, id).await?,
        user,
        invitees,
        revoked,
        events,
    })
}
