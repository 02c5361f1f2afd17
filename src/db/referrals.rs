//! The referral ledger (`referrals`, `referral_revocations`) and the leaderboard it feeds
//! (`inviter_stats`, kept in the same transaction and rebuildable from the ledger).

use chrono::{DateTime, Utc};
use futures_util::stream::BoxStream;
use sqlx::{PgExecutor, PgPool};

use super::Tx;
use crate::domain::{CampaignId, OpenId};

/// A credit to write.
pub struct NewCredit<'a> {
    pub campaign: CampaignId,
    pub invitee: &'a OpenId,
    pub inviter: &'a OpenId,
    pub scene: &'a str,
    pub at: DateTime<Utc>,
}

/// A live credit that an unsubscribe reverses.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Revocable {
    pub id: i64,
    pub campaign_id: CampaignId,
    pub inviter_openid: String,
    /// The unsubscribe that reverses it.
    pub event_id: i64,
    pub left_at: DateTime<Utc>,
}

/// Live credits of each (invitee, unsubscribe event, time) that the unsubscribe reverses:
/// within their campaign's revoke window (0 days = never revoke).
pub async fn revocable(
    tx: &mut Tx<'_>,
    leaves: &[(&OpenId, i64, DateTime<Utc>)],
) -> sqlx::Result<Vec<Revocable>> {
    if leaves.is_empty() {
        return Ok(Vec::new());
    }
    sqlx::query_as(
        "SELECT r.id, r.campaign_id, r.inviter_openid, x.event_id, x.left_at
         FROM unnest($1::text[], $2::bigint[], $3::timestamptz[]) AS x(invitee, event_id, left_at)
         JOIN referrals r ON r.invitee_openid = x.invitee
         JOIN campaigns c ON c.id = r.campaign_id
         WHERE r.invitee_openid = ANY($1) AND c.revoke_window_days > 0
           AND x.left_at >= r.credited_at
           AND x.left_at <= r.credited_at + make_interval(days => c.revoke_window_days)
           AND NOT EXISTS (SELECT 1 FROM referral_revocations v WHERE v.referral_id = r.id)
         ORDER BY r.id, x.left_at",
    )
    .bind(leaves.iter().map(|l| l.0.as_str()).collect::<Vec<_>>())
    .bind(leaves.iter().map(|l| l.1).collect::<Vec<_>>())
    .bind(leaves.iter().map(|l| l.2).collect::<Vec<_>>())
    .fetch_all(&mut **tx)
    .await
}

/// Writes revocations (referral id, unsubscribe event if known, when), in the order given; a
/// referral revoked already keeps its first revocation. Returns the referrals revoked now.
pub async fn revoke_many(
    tx: &mut Tx<'_>,
    revocations: &[(i64, Option<i64>, DateTime<Utc>)],
) -> sqlx::Result<Vec<i64>> {
    if revocations.is_empty() {
        return Ok(Vec::new());
    }
    sqlx::query_scalar(
        "INSERT INTO referral_revocations (referral_id, event_id, revoked_at)
         SELECT r, e, a FROM unnest($1::bigint[], $2::bigint[], $3::timestamptz[])
              WITH ORDINALITY AS x(r, e, a, n)
         ORDER BY n
         ON CONFLICT (referral_id) DO NOTHING
         RETURNING referral_id",
    )
    .bind(revocations.iter().map(|r| r.0).collect::<Vec<_>>())
    .bind(revocations.iter().map(|r| r.1).collect::<Vec<_>>())
    .bind(revocations.iter().map(|r| r.2).collect::<Vec<_>>())
    .fetch_all(&mut **tx)
    .await
}

/// A change to one inviter's leaderboard row: `added` new credits, the latest at `latest`.
pub struct StatsDelta<'a> {
    pub campaign: CampaignId,
    pub inviter: &'a OpenId,
    pub added: i32,
    pub latest: Option<DateTime<Utc>>,
}

/// Recomputes leaderboard rows from the ledger after revocations. The rows must already be
/// locked by this transaction (`batch::count`): this statement's snapshot is taken after the
/// lock, so it sees every credit and revocation committed before — and any not yet committed
/// waits for the lock and adjusts the row after us. Returns each row's new count.
pub async fn recount(
    tx: &mut Tx<'_>,
    rows: &[(CampaignId, &OpenId)],
) -> sqlx::Result<Vec<(CampaignId, String, i32)>> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    sqlx::query_as(
        "WITH live AS (
            SELECT t.campaign_id, t.openid, count(r.id)::int AS invites, max(r.credited_at) AS reached_at
            FROM unnest($1::bigint[], $2::text[]) AS t(campaign_id, openid)
            LEFT JOIN referrals r ON r.campaign_id = t.campaign_id AND r.inviter_openid = t.openid
                 AND r.inviter_openid = ANY($2)
                 AND NOT EXISTS (SELECT 1 FROM referral_revocations v WHERE v.referral_id = r.id)
            GROUP BY t.campaign_id, t.openid
         ), updated AS (
            UPDATE inviter_stats s SET invites = l.invites, reached_at = l.reached_at
            FROM live l WHERE s.openid = ANY($2) AND s.campaign_id = l.campaign_id
              AND s.openid = l.openid AND l.invites > 0
         ), emptied AS (
            DELETE FROM inviter_stats s USING live l
            WHERE s.openid = ANY($2) AND s.campaign_id = l.campaign_id AND s.openid = l.openid
              AND l.invites = 0
         )
         SELECT campaign_id, openid, invites FROM live",
    )
    .bind(rows.iter().map(|r| r.0 .0).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.1.as_str()).collect::<Vec<_>>())
    .fetch_all(&mut **tx)
    .await
}

/// Marks rewards whose threshold is now above the inviter's count as revoked (campaigns that
/// take rewards back): (campaign, inviter, count).
pub async fn revoke_rewards_above(
    tx: &mut Tx<'_>,
    counts: &[(CampaignId, &str, i32)],
) -> sqlx::Result<u64> {
    if counts.is_empty() {
        return Ok(0);
    }
    sqlx::query(
        "UPDATE reward_grants g SET status = 'revoked'
         FROM reward_tiers t, unnest($1::bigint[], $2::text[], $3::int[]) AS x(campaign_id, openid, invites)
         WHERE g.openid = ANY($2) AND t.id = g.tier_id AND g.campaign_id = x.campaign_id
           AND g.openid = x.openid
           AND t.threshold > x.invites AND g.status <> 'revoked'",
    )
    .bind(counts.iter().map(|c| c.0 .0).collect::<Vec<_>>())
    .bind(counts.iter().map(|c| c.1).collect::<Vec<_>>())
    .bind(counts.iter().map(|c| c.2).collect::<Vec<_>>())
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

/// Where an inviter stands in a campaign: their rank (the leaderboard's order) and the invites
/// of the one right above them, if anyone is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::FromRow)]
pub struct Standing {
    pub rank: i64,
    pub above_invites: Option<i32>,
}

/// `None` while the inviter has no live credit in the campaign (not on the board).
pub async fn standing(
    db: impl PgExecutor<'_>,
    campaign_id: i64,
    openid: &str,
) -> sqlx::Result<Option<Standing>> {
    sqlx::query_as(
        "WITH me AS (
             SELECT invites, reached_at FROM inviter_stats
             WHERE campaign_id = $1 AND openid = $2 AND invites > 0),
         ahead AS (
             SELECT s.invites FROM inviter_stats s, me
             WHERE s.campaign_id = $1 AND s.invites > 0
               AND (s.invites > me.invites
                    OR (s.invites = me.invites AND (s.reached_at < me.reached_at
                        OR (s.reached_at = me.reached_at AND s.openid < $2)))))
         SELECT (SELECT count(*) FROM ahead) + 1 AS rank,
                (SELECT min(invites) FROM ahead) AS above_invites
         FROM me",
    )
    .bind(campaign_id)
    .bind(openid)
    .fetch_optional(db)
    .await
}

/// One leaderboard row that a rebuild changed: (invites, reached_at) before and after.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct StatsChange {
    pub campaign_id: i64,
    pub openid: String,
    pub invites_before: Option<i32>,
    pub reached_before: Option<DateTime<Utc>>,
    pub invites_after: Option<i32>,
    pub reached_after: Option<DateTime<Utc>>,
}

/// The leaderboard as the ledger has it (campaign `$1`, or all): live credits per inviter.
macro_rules! live_stats {
    () => {
        "WITH live AS (
            SELECT r.campaign_id, r.inviter_openid AS openid, count(*)::int AS invites,
                   max(r.credited_at) AS reached_at
            FROM referrals r
            WHERE ($1::bigint IS NULL OR r.campaign_id = $1)
              AND NOT EXISTS (SELECT 1 FROM referral_revocations v WHERE v.referral_id = r.id)
            GROUP BY r.campaign_id, r.inviter_openid
         )"
    };
}

/// Rebuilds the materialised leaderboard of one campaign (or all) from the ledger, holding the
/// campaign's rows while it does, and returns the rows it changed.
pub async fn rebuild_stats(
    pool: &PgPool,
    campaign: Option<CampaignId>,
) -> sqlx::Result<Vec<StatsChange>> {
    let mut tx = pool.begin().await?;
    // Credits and revocations lock their rows; this waits for those in flight and holds off
    // new ones (they insert or update rows of this table) until the rebuild commits.
    sqlx::query("LOCK TABLE inviter_stats IN SHARE ROW EXCLUSIVE MODE")
        .execute(&mut *tx)
        .await?;
    let changes = sqlx::query_as(concat!(
        live_stats!(),
        ", current AS (
            SELECT campaign_id, openid, invites, reached_at FROM inviter_stats
            WHERE ($1::bigint IS NULL OR campaign_id = $1) AND invites > 0
         )
         SELECT COALESCE(l.campaign_id, c.campaign_id) AS campaign_id,
                COALESCE(l.openid, c.openid) AS openid,
                c.invites AS invites_before, c.reached_at AS reached_before,
                l.invites AS invites_after, l.reached_at AS reached_after
         FROM live l FULL JOIN current c ON c.campaign_id = l.campaign_id AND c.openid = l.openid
         WHERE l.invites IS DISTINCT FROM c.invites OR l.reached_at IS DISTINCT FROM c.reached_at
         ORDER BY 1, 2"
    ))
    .bind(campaign.map(|c| c.0))
    .fetch_all(&mut *tx)
    .await?;
    // Rows are corrected in place, so what each inviter has been told (the notice and page
    // watermarks) survives a rebuild.
    sqlx::query(concat!(
        live_stats!(),
        ", gone AS (
            DELETE FROM inviter_stats s
            WHERE ($1::bigint IS NULL OR s.campaign_id = $1)
              AND NOT EXISTS (SELECT 1 FROM live l
                              WHERE l.campaign_id = s.campaign_id AND l.openid = s.openid)
         )
         INSERT INTO inviter_stats (campaign_id, openid, invites, reached_at)
         SELECT campaign_id, openid, invites, reached_at FROM live
         ON CONFLICT (campaign_id, openid)
         DO UPDATE SET invites = EXCLUDED.invites, reached_at = EXCLUDED.reached_at"
    ))
    .bind(campaign.map(|c| c.0))
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(changes)
}

/// Live credits of an inviter in a campaign.
pub async fn invites_of(
    db: impl PgExecutor<'_>,
    campaign_id: i64,
    openid: &OpenId,
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
pub async fn inviter_of(db: impl PgExecutor<'_>, invitee: &OpenId) -> sqlx::Result<Option<String>> {
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
    pub campaign_name: String,
    pub inviter_nickname: Option<String>,
    pub invitee_nickname: Option<String>,
}

/// The whole ledger with names, streamed row by row (never held in memory).
pub fn ledger(pool: &PgPool) -> BoxStream<'_, sqlx::Result<LedgerRow>> {
    sqlx::query_as(
        "SELECT r.invitee_openid, r.inviter_openid, r.campaign_id, r.scene, r.credited_at,
                v.revoked_at, c.name AS campaign_name, ui.nickname AS inviter_nickname,
                ue.nickname AS invitee_nickname
         FROM referrals r
         JOIN campaigns c ON c.id = r.campaign_id
         LEFT JOIN referral_revocations v ON v.referral_id = r.id
         LEFT JOIN users ui ON ui.openid = r.inviter_openid
         LEFT JOIN users ue ON ue.openid = r.invitee_openid
         ORDER BY r.id",
    )
    .fetch(pool)
}

/// Live credits of an inviter across every campaign.
pub async fn invites_total(db: impl PgExecutor<'_>, openid: &OpenId) -> sqlx::Result<i64> {
    sqlx::query_scalar(
        "SELECT COALESCE(sum(invites), 0)::bigint FROM inviter_stats WHERE openid = $1",
    )
    .bind(openid)
    .fetch_one(db)
    .await
}
