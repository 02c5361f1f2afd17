//! A follower's own view of the running campaign (what the invite page shows): friends who
//! joined, the next reward tier, rewards won, the friends themselves. Also whether someone is
//! a follower at all, asking WeChat once when Fission has never been told.

use anyhow::Context;
use chrono::{DateTime, Duration, DurationRound, Utc};

use super::rules;
use crate::db;
use crate::db::campaigns::{Campaign, GrantView};
use crate::db::referrals::{InviteeRow, LeaderRow};
use crate::db::users::Presence;
use crate::domain::OpenId;
use crate::services::ServiceError;
use crate::services::Services;

/// How many invited friends the page lists (the count above it covers all of them).
const FRIENDS_SHOWN: i64 = 100;
/// How many of the leaderboard's top the page shows.
const TOP_SHOWN: i64 = 10;

#[derive(Debug, Clone)]
pub struct Progress {
    pub campaign: Campaign,
    /// Credited friends who have not been revoked.
    pub invites: i32,
    pub next: Option<NextTier>,
    /// The campaign has reward tiers at all.
    pub has_tiers: bool,
    pub grants: Vec<GrantView>,
    /// Tiers reached that wait for their date (a campaign that delays rewards).
    pub waiting: Vec<db::delayed::Waiting>,
    pub friends: Vec<InviteeRow>,
    /// The follower's place on the leaderboard; `None` before their first live credit.
    pub rank: Option<i64>,
    /// How to move up the leaderboard; `None` at the top.
    pub way_up: Option<WayUp>,
    pub top: Vec<LeaderRow>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WayUp {
    /// Not on the board yet: one live invite puts the follower on it.
    JoinBoard,
    /// `more` invites take `place`.
    Place { place: i64, more: i32 },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NextTier {
    pub name: String,
    pub threshold: i32,
    /// Friends still needed.
    pub more: i32,
}

/// The follower's progress in the campaign running now; `None` when no campaign runs.
pub async fn of(state: &Services, openid: &OpenId) -> anyhow::Result<Option<Progress>> {
    let pool = &state.pool;
    let Some(campaign) = db::campaigns::active_at(pool, Utc::now()).await? else {
        return Ok(None);
    };
    let invites = db::referrals::invites_of(pool, campaign.id, openid).await?;
    let tiers = db::campaigns::tiers(pool, campaign.id).await?;
    let next = rules::next_tier(
        invites,
        tiers.iter().map(|t| (t.threshold, t.name.as_str())),
    )
    .map(|(more, name)| NextTier {
        name: name.to_string(),
        threshold: invites + more,
        more,
    });
    let grants = db::campaigns::grants_of(pool, openid.as_str(), campaign.id).await?;
    let waiting = db::delayed::waiting_of(pool, openid.as_str(), campaign.id).await?;
    let friends =
        db::referrals::invitees_of(pool, campaign.id, openid.as_str(), FRIENDS_SHOWN).await?;
    let standing = db::referrals::standing(pool, campaign.id, openid.as_str()).await?;
    let top = db::referrals::leaderboard(pool, campaign.id, TOP_SHOWN, 0).await?;
    Ok(Some(Progress {
        rank: standing.map(|s| s.rank),
        way_up: way_up(invites, standing),
        top,
        has_tiers: !tiers.is_empty(),
        campaign,
        invites,
        next,
        grants,
        waiting,
        friends,
    }))
}

/// The place above the follower's takes one more invite than the one there has (a tie goes to
/// whoever reached the count first, and that is them).
fn way_up(invites: i32, standing: Option<db::referrals::Standing>) -> Option<WayUp> {
    match standing {
        None => Some(WayUp::JoinBoard),
        Some(s) => s.above_invites.map(|above| WayUp::Place {
            place: s.rank - 1,
            more: (above - invites + 1).max(1),
        }),
    }
}

/// The follower is looking at their progress in `campaign`: whatever was waiting to be told
/// counts as told. Returns how many of their friends are new since they last saw it.
pub async fn seen(state: &Services, openid: &OpenId, campaign: i64) -> sqlx::Result<i64> {
    db::notices::seen_on_page(&state.pool, openid, campaign).await
}

/// Does this person follow the account? Fission's record decides once it has seen a follow or
/// unfollow; before that (a follower from before Fission, not imported) WeChat is asked once and
/// the answer recorded, so the next visit does not ask again.
pub async fn follows(state: &Services, openid: &OpenId) -> Result<bool, ServiceError> {
    if let Some(user) = db::users::get(&state.pool, openid).await? {
        if user.subscribed || user.state_at.is_some() {
            return Ok(user.subscribed);
        }
    }
    let info = state.wechat.user_info(openid.as_str()).await?;
    let following = info.subscribe == 1;
    let at = if following {
        info.subscribe_time
            .and_then(|t| DateTime::from_timestamp(t, 0))
            .unwrap_or_else(Utc::now)
    } else {
        // Pushes carry whole seconds: a follow right after this look must not be taken for
        // older than it, or it would not override this "not following".
        Utc::now()
            .duration_trunc(Duration::seconds(1))
            .context("truncating the clock")?
            - Duration::seconds(1)
    };
    let mut tx = state.pool.begin().await?;
    db::users::lock_many(&mut tx, &[openid]).await?;
    db::users::apply(
        &mut tx,
        openid.as_str(),
        at,
        Presence {
            following,
            state: Some(following),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(following)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::referrals::Standing;

    #[test]
    fn the_way_up_is_one_more_than_the_place_above() {
        assert_eq!(way_up(0, None), Some(WayUp::JoinBoard));
        let eleventh = Standing {
            rank: 11,
            above_invites: Some(3),
        };
        assert_eq!(
            way_up(2, Some(eleventh)),
            Some(WayUp::Place { place: 10, more: 2 })
        );
        let tied = Standing {
            rank: 3,
            above_invites: Some(4),
        };
        assert_eq!(
            way_up(4, Some(tied)),
            Some(WayUp::Place { place: 2, more: 1 })
        );
        let first = Standing {
            rank: 1,
            above_invites: None,
        };
        assert_eq!(way_up(9, Some(first)), None);
    }
}
