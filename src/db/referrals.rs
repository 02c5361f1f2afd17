//! The referral ledger (`referrals`, `referral_revocations`) and the leaderboard it feeds
//! (`inviter_stats`, kept in the same transaction and rebuildable from the ledger).

use chrono::{DateTime, Utc};
use futures_util::stream::BoxStream;
use sqlx::{PgExecutor, PgPool};

use super::Tx;

/// Writes a credit. `None` means this invitee was already credited in this campaign — the
/// unique constraint decides, whichever instance or retry got there first.
pub async fn credit(
    tx: &mut Tx<'_>,
    campaign_id: i64,
    invitee: &str,
    inviter: &str,
    scene: &str,
    event_id: i64,
    at: DateTime<Utc>,
) -> sqlx::Result<Option<i64>> {
    sqlx::query_scalar(
        "INSERT INTO referrals (campaign_id, invitee_openid, inviter_openid, scene, event_id, credited_at)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT ON CONSTRAINT referrals_once_per_campaign DO NOTHING
         RETURNING id",
    )
    .bind(campaign_id)
    .bind(invitee)
    .bind(inviter)
    .bind(scene)
    .bind(event_id)
    .bind(at)
    .fetch_optional(&mut **tx)
    .await
}

/// Adds one to the inviter's count and returns the new count. The time the count was reached
/// is the latest credit among those counted, which stays right when pushes arrive out of order.
pub async fn count_credit(
    tx: &mut Tx<'_>,
    campaign_id: i64,
    inviter: &str,
    at: DateTime<Utc>,
) -> sqlx::Result<i32> {
    sqlx::query_scalar(
        "INSERT INTO inviter_stats (campaign_id, openid, invites, reached_at) VALUES ($1, $2, 1, $3)
         ON CONFLICT (campaign_id, openid) DO UPDATE
            SET invites = inviter_stats.invites + 1,
                reached_at = GREATEST(inviter_stats.reached_at, EXCLUDED.reached_at)
         RETURNING invites",
    )
    .bind(campaign_id)
    .bind(inviter)
    .bind(at)
    .fetch_one(&mut **tx)
    .await
}

/// Recomputes one inviter's count from the ledger (after a revocation).
pub async fn recount(tx: &mut Tx<'_>, campaign_id: i64, inviter: &str) -> sqlx::Result<i32> {
    let (count, reached): (i64, Option<DateTime<Utc>>) = sqlx::query_as(
        "SELECT count(*), max(r.credited_at) FROM referrals r
         WHERE r.campaign_id = $1 AND r.inviter_openid = $2
           AND NOT EXISTS (SELECT 1 FROM referral_revocations v WHERE v.referral_id = r.id)",
    )
    .bind(campaign_id)
    .bind(inviter)
    .fetch_one(&mut **tx)
    .await?;
    match reached {
        Some(reached_at) => {
            sqlx::query(
                "INSERT INTO inviter_stats (campaign_id, openid, invites, reached_at) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (campaign_id, openid) DO UPDATE SET invites = EXCLUDED.invites, reached_at = EXCLUDED.reached_at",
            )
            .bind(campaign_id)
            .bind(inviter)
            .bind(count as i32)
            .bind(reached_at)
            .execute(&mut **tx)
            .await?;
        }
        None => {
            sqlx::query("DELETE FROM inviter_stats WHERE campaign_id = $1 AND openid = $2")
                .bind(campaign_id)
                .bind(inviter)
                .execute(&mut **tx)
                .await?;
        }
    }
    Ok(count as i32)
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Revocable {
    pub id: i64,
    pub campaign_id: i64,
    pub inviter_openid: String,
    pub credited_at: DateTime<Utc>,
    pub revoke_rewards: bool,
}

/// Live credits of `invitee` that an unsubscribe at `at` reverses: within their campaign's
/// revoke window (0 days = never revoke).
pub async fn revocable(
    tx: &mut Tx<'_>,
    invitee: &str,
    at: DateTime<Utc>,
) -> sqlx::Result<Vec<Revocable>> {
    sqlx::query_as(
        "SELECT r.id, r.campaign_id, r.inviter_openid, r.credited_at, c.revoke_rewards
         FROM referrals r JOIN campaigns c ON c.id = r.campaign_id
         WHERE r.invitee_openid = $1
           AND c.revoke_window_days > 0
           AND $2 >= r.credited_at
           AND $2 <= r.credited_at + make_interval(days => c.revoke_window_days)
           AND NOT EXISTS (SELECT 1 FROM referral_revocations v WHERE v.referral_id = r.id)",
    )
    .bind(invitee)
    .bind(at)
    .fetch_all(&mut **tx)
    .await
}

pub async fn revoke(
    tx: &mut Tx<'_>,
    referral_id: i64,
    event_id: Option<i64>,
    at: DateTime<Utc>,
) -> sqlx::Result<bool> {
    sqlx::query(
        "INSERT INTO referral_revocations (referral_id, event_id, revoked_at) VALUES ($1, $2, $3)
         ON CONFLICT (referral_id) DO NOTHING",
    )
    .bind(referral_id)
    .bind(event_id)
    .bind(at)
    .execute(&mut **tx)
    .await
    .map(|r| r.rows_affected() == 1)
}

/// Marks rewards whose threshold is now above the inviter's count as revoked (campaigns that
/// take rewards back).
pub async fn revoke_rewards_above(
    tx: &mut Tx<'_>,
    campaign_id: i64,
    openid: &str,
    count: i32,
) -> sqlx::Result<u64> {
    sqlx::query(
        "UPDATE reward_grants g SET status = 'revoked' FROM reward_tiers t
         WHERE t.id = g.tier_id AND g.campaign_id = $1 AND g.openid = $2 AND t.threshold > $3 AND g.status <> 'revoked'",
    )
    .bind(campaign_id)
    .bind(openid)
    .bind(count)
    .execute(&mut **tx)
    .await
    .map(|r| r.rows_affected())
}

#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct LeaderRow {
    pub rank: i64,
    pub openid: String,
    pub nickname: Option<String>,
    pub invites: i32,
}

/// Top inviters of a campaign: most live credits first, ties to whoever reached the count first.
pub async fn leaderboard(
    db: impl PgExecutor<'_>,
    campaign_id: i64,
    limit: i64,
    offset: i64,
) -> sqlx::Result<Vec<LeaderRow>> {
    sqlx::query_as(
        "SELECT $3 + row_number() OVER (ORDER BY s.invites DESC, s.reached_at ASC, s.openid ASC) AS rank,
                s.openid, u.nickname, s.invites
         FROM (SELECT openid, invites, reached_at FROM inviter_stats
               WHERE campaign_id = $1 AND invites > 0
               ORDER BY invites DESC, reached_at ASC, openid ASC
               LIMIT $2 OFFSET $3) s
         LEFT JOIN users u ON u.openid = s.openid
         ORDER BY rank",
    )
    .bind(campaign_id)
    .bind(limit)
    .bind(offset)
    .fetch_all(db)
    .await
}

/// Rebuilds the materialised leaderboard of a campaign from the ledger.
pub async fn rebuild_stats(pool: &PgPool, campaign_id: i64) -> sqlx::Result<()> {
    let mut tx = pool.begin().await?;
    sqlx::query("DELETE FROM inviter_stats WHERE campaign_id = $1")
        .bind(campaign_id)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO inviter_stats (campaign_id, openid, invites, reached_at)
         SELECT r.campaign_id, r.inviter_openid, count(*), max(r.credited_at) FROM referrals r
         WHERE r.campaign_id = $1 AND NOT EXISTS (SELECT 1 FROM referral_revocations v WHERE v.referral_id = r.id)
         GROUP BY r.campaign_id, r.inviter_openid",
    )
    .bind(campaign_id)
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}

/// Live credits of an inviter in a campaign.
pub async fn invites_of(
    db: impl PgExecutor<'_>,
    campaign_id: i64,
    openid: &str,
) -> sqlx::Result<i32> {
    let n: Option<i32> = sqlx::query_scalar(
        "SELECT invites FROM inviter_stats WHERE campaign_id = $1 AND openid = $2",
    )
    .bind(campaign_id)
    .bind(openid)
    .fetch_optional(db)
    .await?;
    Ok(n.unwrap_or(0))
}

/// Who invited this follower (the first credit that is still standing, any campaign).
pub async fn inviter_of(db: impl PgExecutor<'_>, invitee: &str) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar(
        "SELECT r.inviter_openid FROM referrals r WHERE r.invitee_openid = $1
         ORDER BY (EXISTS (SELECT 1 FROM referral_revocations v WHERE v.referral_id = r.id)), r.credited_at
         LIMIT 1",
    )
    .bind(invitee)
    .fetch_optional(db)
    .await
}

#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct InviteeRow {
    pub invitee_openid: String,
    pub nickname: Option<String>,
    pub credited_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

pub async fn invitees_of(
    pool: &PgPool,
    campaign_id: i64,
    inviter: &str,
    limit: i64,
) -> sqlx::Result<Vec<InviteeRow>> {
    sqlx::query_as(
        "SELECT r.invitee_openid, u.nickname, r.credited_at, v.revoked_at
         FROM referrals r
         LEFT JOIN referral_revocations v ON v.referral_id = r.id
         LEFT JOIN users u ON u.openid = r.invitee_openid
         WHERE r.campaign_id = $1 AND r.inviter_openid = $2
         ORDER BY r.credited_at DESC LIMIT $3",
    )
    .bind(campaign_id)
    .bind(inviter)
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// One row of the ledger export.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct LedgerRow {
    pub invitee_openid: String,
    pub inviter_openid: String,
    pub campaign_id: i64,
    pub scene: String,
    pub credited_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// The whole ledger, streamed row by row (never held in memory).
pub fn ledger(pool: &PgPool) -> BoxStream<'_, sqlx::Result<LedgerRow>> {
    sqlx::query_as(
        "SELECT r.invitee_openid, r.inviter_openid, r.campaign_id, r.scene, r.credited_at, v.revoked_at
         FROM referrals r LEFT JOIN referral_revocations v ON v.referral_id = r.id
         ORDER BY r.id",
    )
    .fetch(pool)
}

/// Live credits of an inviter across every campaign.
pub async fn invites_total(db: impl PgExecutor<'_>, openid: &str) -> sqlx::Result<i64> {
    sqlx::query_scalar(
        "SELECT COALESCE(sum(invites), 0)::bigint FROM inviter_stats WHERE openid = $1",
    )
    .bind(openid)
    .fetch_one(db)
    .await
}
