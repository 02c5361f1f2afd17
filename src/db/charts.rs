//! The dashboard's chart series: daily follows by source, the referral funnel and the K-factor.
//! Days are China days (WeChat's and the operators' calendar).

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::PgPool;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DailyFollows {
    pub day: NaiveDate,
    pub referred: i64,
    pub channel: i64,
    pub other: i64,
}

/// Follows per day since `since`, by the outcome the push was given. Followers Fission already
/// knew (`not_new`) are not new followers and are left out.
pub async fn daily_follows(pool: &PgPool, since: DateTime<Utc>) -> sqlx::Result<Vec<DailyFollows>> {
    sqlx::query_as(
        "SELECT (received_at AT TIME ZONE 'Asia/Shanghai')::date AS day,
                count(*) FILTER (WHERE outcome = 'credited') AS referred,
                count(*) FILTER (WHERE outcome = 'channel_follow') AS channel,
                count(*) FILTER (WHERE outcome NOT IN ('credited', 'channel_follow')) AS other
         FROM events
         WHERE received_at >= $1 AND event = 'subscribe' AND outcome <> 'not_new'
         GROUP BY 1 ORDER BY 1",
    )
    .bind(since)
    .fetch_all(pool)
    .await
}

#[derive(Debug, Clone, Default, sqlx::FromRow, serde::Serialize)]
pub struct Funnel {
    /// Scans of any Fission code (a follow through a code is a scan too).
    pub scans: i64,
    /// Follows through a code.
    pub follows: i64,
    /// Of those follows at least 7 days old: how many there were, and how many did not
    /// unfollow within the 7 days.
    pub follows_7d_old: i64,
    pub retained_7d: i64,
    /// Followers who reached a reward tier (grant not revoked).
    pub reached_tier: i64,
}

pub async fn funnel(pool: &PgPool, since: DateTime<Utc>) -> sqlx::Result<Funnel> {
    sqlx::query_as(
        "WITH code_follows AS (
             SELECT openid, create_time FROM events
             WHERE received_at >= $1 AND event = 'subscribe' AND event_key LIKE 'qrscene\\_%'),
         old_enough AS (
             SELECT f.openid, f.create_time FROM code_follows f
             WHERE f.create_time <= now() - interval '7 days')
         SELECT
             (SELECT count(*) FROM events WHERE received_at >= $1
                 AND (event = 'SCAN' OR (event = 'subscribe' AND event_key LIKE 'qrscene\\_%'))) AS scans,
             (SELECT count(*) FROM code_follows) AS follows,
             (SELECT count(*) FROM old_enough) AS follows_7d_old,
             (SELECT count(*) FROM old_enough o WHERE NOT EXISTS (
                 SELECT 1 FROM events u WHERE u.openid = o.openid AND u.event = 'unsubscribe'
                   AND u.create_time >= o.create_time
                   AND u.create_time < o.create_time + interval '7 days')) AS retained_7d,
             (SELECT count(DISTINCT openid) FROM reward_grants
                 WHERE granted_at >= $1 AND status <> 'revoked') AS reached_tier",
    )
    .bind(since)
    .fetch_one(pool)
    .await
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DailyCount {
    pub day: NaiveDate,
    pub n: i64,
}

/// Standing credits per day over the whole ledger (the K-factor needs the running total).
pub async fn daily_credits(pool: &PgPool) -> sqlx::Result<Vec<DailyCount>> {
    sqlx::query_as(
        "SELECT (r.credited_at AT TIME ZONE 'Asia/Shanghai')::date AS day, count(*) AS n
         FROM referrals r
         WHERE NOT EXISTS (SELECT 1 FROM referral_revocations v WHERE v.referral_id = r.id)
         GROUP BY 1 ORDER BY 1",
    )
    .fetch_all(pool)
    .await
}

/// Followers who took an invite code, per day of issue.
pub async fn daily_code_holders(pool: &PgPool) -> sqlx::Result<Vec<DailyCount>> {
    sqlx::query_as(
        "SELECT (created_at AT TIME ZONE 'Asia/Shanghai')::date AS day, count(*) AS n
         FROM invite_codes WHERE owner_openid IS NOT NULL
         GROUP BY 1 ORDER BY 1",
    )
    .fetch_all(pool)
    .await
}
