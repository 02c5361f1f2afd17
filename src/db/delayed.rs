//! Delayed rewards (`reward_pending`): tiers reached in a campaign that waits N days before
//! granting, deferred by the push path and settled — granted or lapsed — by the periodic job
//! (`jobs::delayed`) once due.

use chrono::{DateTime, Utc};
use sqlx::{PgExecutor, PgPool};

use super::Tx;
use crate::domain::OpenId;

/// Each campaign's delay in days (0 = rewards are granted at once).
pub async fn delays(tx: &mut Tx<'_>) -> sqlx::Result<Vec<(i64, i32)>> {
    sqlx::query_as("SELECT id, reward_delay_days FROM campaigns")
        .fetch_all(&mut **tx)
        .await
}

/// A tier an inviter reached, to be granted later.
pub struct Deferred<'a> {
    pub tier_id: i64,
    pub campaign_id: i64,
    pub openid: &'a OpenId,
    /// The CreateTime of the credit that reached it: the delay counts from there.
    pub reached_at: DateTime<Utc>,
}

/// Records the tiers a batch reached as waiting until `reached_at` plus their campaign's delay,
/// in one statement taking the rows in (tier, openid) order. A tier already waiting keeps its
/// date; one that lapsed waits again.
pub async fn defer(tx: &mut Tx<'_>, rows: &[Deferred<'_>]) -> sqlx::Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO reward_pending AS p (tier_id, openid, campaign_id, reached_at, due_at)
         SELECT x.t, x.o, x.c, x.a, x.a + make_interval(days => k.reward_delay_days)
         FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::timestamptz[]) AS x(t, o, c, a)
         JOIN campaigns k ON k.id = x.c
         ORDER BY x.t, x.o
         ON CONFLICT (tier_id, openid) DO UPDATE
            SET status = 'waiting', reached_at = EXCLUDED.reached_at, due_at = EXCLUDED.due_at,
                settled_at = NULL, grant_id = NULL
            WHERE p.status = 'lapsed'",
    )
    .bind(rows.iter().map(|r| r.tier_id).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.openid.as_str()).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.campaign_id).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.reached_at).collect::<Vec<_>>())
    .execute(&mut **tx)
    .await
    .map(drop)
}

/// Inviters (campaign, openid) with a waiting tier that is due, oldest due first, leaving out
/// those whose rewards are withheld (held or blocked: an operator decides for them).
pub async fn due_inviters(pool: &PgPool, limit: i64) -> sqlx::Result<Vec<(i64, String)>> {
    sqlx::query_as(
        "SELECT campaign_id, openid FROM (
            SELECT p.campaign_id, p.openid, min(p.due_at) AS due
            FROM reward_pending p
            WHERE p.status = 'waiting' AND p.due_at <= now()
              AND NOT EXISTS (SELECT 1 FROM risk_inviters r
                              WHERE r.campaign_id = p.campaign_id AND r.openid = p.openid
                                AND r.status IN ('held', 'blocked'))
            GROUP BY 1, 2 ORDER BY due LIMIT $1
         ) d",
    )
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// A due tier, with what settling it depends on (read under the inviter's leaderboard row).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Due {
    pub tier_id: i64,
    pub campaign_id: i64,
    pub openid: String,
    pub threshold: i32,
    /// The inviter's live count (credits not revoked).
    pub invites: i32,
    pub risk_status: String,
    pub granted: bool,
}

/// Holds the inviters' leaderboard rows (in (campaign, openid) order, as the push path does),
/// then their due waiting tiers, and returns those tiers. Another instance settling the same
/// inviters waits here and then finds nothing waiting.
pub async fn lock_due(tx: &mut Tx<'_>, inviters: &[(i64, String)]) -> sqlx::Result<Vec<Due>> {
    let mut inviters = inviters.to_vec();
    inviters.sort();
    inviters.dedup();
    let campaigns: Vec<i64> = inviters.iter().map(|i| i.0).collect();
    let openids: Vec<&str> = inviters.iter().map(|i| i.1.as_str()).collect();
    sqlx::query(
        "SELECT 1 FROM inviter_stats s
         WHERE (s.campaign_id, s.openid) IN (SELECT * FROM unnest($1::bigint[], $2::text[]))
         ORDER BY s.campaign_id, s.openid FOR UPDATE",
    )
    .bind(&campaigns)
    .bind(&openids)
    .execute(&mut **tx)
    .await?;
    sqlx::query_as(
        "SELECT p.tier_id, p.campaign_id, p.openid, t.threshold,
                COALESCE(s.invites, 0) AS invites, COALESCE(r.status, 'ok') AS risk_status,
                EXISTS (SELECT 1 FROM reward_grants g
                        WHERE g.tier_id = p.tier_id AND g.openid = p.openid) AS granted
         FROM reward_pending p
         JOIN reward_tiers t ON t.id = p.tier_id
         LEFT JOIN inviter_stats s ON s.campaign_id = p.campaign_id AND s.openid = p.openid
         LEFT JOIN risk_inviters r ON r.campaign_id = p.campaign_id AND r.openid = p.openid
         WHERE (p.campaign_id, p.openid) IN (SELECT * FROM unnest($1::bigint[], $2::text[]))
           AND p.status = 'waiting' AND p.due_at <= now()
         ORDER BY p.tier_id, p.openid
         FOR UPDATE OF p",
    )
    .bind(&campaigns)
    .bind(&openids)
    .fetch_all(&mut **tx)
    .await
}

/// Marks waiting tiers settled: (tier, openid, 'granted' | 'lapsed', the grant made).
pub async fn settle(
    tx: &mut Tx<'_>,
    settled: &[(i64, &str, &str, Option<i64>)],
) -> sqlx::Result<()> {
    if settled.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "UPDATE reward_pending p
         SET status = x.s, settled_at = now(),
             grant_id = COALESCE(x.g, (SELECT g.id FROM reward_grants g
                                       WHERE g.tier_id = p.tier_id AND g.openid = p.openid))
         FROM unnest($1::bigint[], $2::text[], $3::text[], $4::bigint[]) AS x(t, o, s, g)
         WHERE p.tier_id = x.t AND p.openid = x.o AND p.status = 'waiting'",
    )
    .bind(settled.iter().map(|s| s.0).collect::<Vec<_>>())
    .bind(settled.iter().map(|s| s.1).collect::<Vec<_>>())
    .bind(settled.iter().map(|s| s.2).collect::<Vec<_>>())
    .bind(settled.iter().map(|s| s.3).collect::<Vec<_>>())
    .execute(&mut **tx)
    .await
    .map(drop)
}

/// A tier waiting for its date, as the follower's page shows it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Waiting {
    pub tier_name: String,
    pub threshold: i32,
    pub due_at: DateTime<Utc>,
}

/// The follower's tiers waiting in a campaign, by threshold.
pub async fn waiting_of(
    db: impl PgExecutor<'_>,
    openid: &str,
    campaign: i64,
) -> sqlx::Result<Vec<Waiting>> {
    sqlx::query_as(
        "SELECT t.name AS tier_name, t.threshold, p.due_at
         FROM reward_pending p JOIN reward_tiers t ON t.id = p.tier_id
         WHERE p.openid = $1 AND p.campaign_id = $2 AND p.status = 'waiting'
         ORDER BY t.threshold",
    )
    .bind(openid)
    .bind(campaign)
    .fetch_all(db)
    .await
}
