//! Notices to inviters: the one pending notice job per follower, what they have not been told
//! yet, how they can be reached (allowance, accepted subscriptions), and what was sent.

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use super::Tx;
use crate::domain::{NoticeTexts, OpenId};

/// A subscription-notice answer from a push.
pub struct Choice<'a> {
    pub openid: &'a OpenId,
    pub template_id: &'a str,
    pub accepted: bool,
    pub at: DateTime<Utc>,
    pub event_id: Option<i64>,
}

/// Records accepted subscriptions (one notice each) and withdraws the unspent ones a
/// rejection names.
pub async fn record_choices(tx: &mut Tx<'_>, choices: &[Choice<'_>]) -> sqlx::Result<()> {
    let (accepted, rejected): (Vec<&Choice>, Vec<&Choice>) =
        choices.iter().partition(|c| c.accepted);
    if !accepted.is_empty() {
        sqlx::query(
            "INSERT INTO notice_subscriptions (openid, template_id, accepted_at, event_id)
             SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::bigint[])",
        )
        .bind(
            accepted
                .iter()
                .map(|c| c.openid.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(accepted.iter().map(|c| c.template_id).collect::<Vec<_>>())
        .bind(accepted.iter().map(|c| c.at).collect::<Vec<_>>())
        .bind(accepted.iter().map(|c| c.event_id).collect::<Vec<_>>())
        .execute(&mut **tx)
        .await?;
    }
    if !rejected.is_empty() {
        sqlx::query(
            "UPDATE notice_subscriptions s SET withdrawn_at = x.at
             FROM unnest($1::text[], $2::text[], $3::timestamptz[]) AS x(openid, template_id, at)
             WHERE s.openid = x.openid AND s.template_id = x.template_id AND s.accepted_at <= x.at
               AND s.spent_at IS NULL AND s.withdrawn_at IS NULL",
        )
        .bind(
            rejected
                .iter()
                .map(|c| c.openid.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(rejected.iter().map(|c| c.template_id).collect::<Vec<_>>())
        .bind(rejected.iter().map(|c| c.at).collect::<Vec<_>>())
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// How a follower can be reached now.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ReachRow {
    /// Not known to have left: following as far as Fission saw, or a follower from before
    /// Fission whose follow it never saw (WeChat will say if they left).
    pub following: bool,
    pub cs_left: i32,
    pub cs_until: Option<DateTime<Utc>>,
    pub cs_opened_at: Option<DateTime<Utc>>,
    /// Templates with an unspent acceptance.
    pub accepted: Vec<String>,
}

pub async fn reach(pool: &PgPool, openid: &OpenId) -> sqlx::Result<Option<ReachRow>> {
    sqlx::query_as(
        "SELECT (u.subscribed OR u.state_at IS NULL) AS following, u.cs_left, u.cs_until, u.cs_opened_at,
                ARRAY(SELECT s.template_id FROM notice_subscriptions s
                      WHERE s.openid = u.openid AND s.spent_at IS NULL AND s.withdrawn_at IS NULL
                      ORDER BY s.id) AS accepted
         FROM users u WHERE u.openid = $1",
    )
    .bind(openid)
    .fetch_optional(pool)
    .await
}

/// What one campaign has for the follower since their last notice.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct NewsRow {
    pub campaign_id: i64,
    #[sqlx(flatten)]
    pub texts: NoticeTexts,
    pub total: i32,
    pub new_friends: i64,
    pub latest_friend: Option<String>,
    /// The newest credit this notice covers (the watermark after it is sent).
    pub through: i64,
    /// The next tier above `total`.
    pub next_threshold: Option<i32>,
    pub next_name: Option<String>,
}

pub async fn news(db: impl sqlx::PgExecutor<'_>, openid: &OpenId) -> sqlx::Result<Vec<NewsRow>> {
    sqlx::query_as(
        "SELECT s.campaign_id, c.credit_text, c.reward_text, c.template_id, c.template_fields,
                c.subscribe_template_id, c.subscribe_fields, s.invites AS total,
                n.new_friends, n.latest_friend, GREATEST(n.through, s.notified_through) AS through,
                t.threshold AS next_threshold, t.name AS next_name
         FROM inviter_stats s
         JOIN campaigns c ON c.id = s.campaign_id
         CROSS JOIN LATERAL (
             SELECT count(*) FILTER (WHERE v.id IS NULL) AS new_friends,
                    COALESCE(max(r.id), 0) AS through,
                    (SELECT u.nickname FROM referrals r2 JOIN users u ON u.openid = r2.invitee_openid
                     LEFT JOIN referral_revocations v2 ON v2.referral_id = r2.id
                     WHERE r2.campaign_id = s.campaign_id AND r2.inviter_openid = s.openid
                       AND r2.id > s.notified_through AND v2.id IS NULL
                     ORDER BY r2.id DESC LIMIT 1) AS latest_friend
             FROM referrals r LEFT JOIN referral_revocations v ON v.referral_id = r.id
             WHERE r.campaign_id = s.campaign_id AND r.inviter_openid = s.openid
               AND r.id > s.notified_through
         ) n
         LEFT JOIN LATERAL (
             SELECT threshold, name FROM reward_tiers
             WHERE campaign_id = s.campaign_id AND threshold > s.invites
             ORDER BY threshold LIMIT 1
         ) t ON true
         WHERE s.openid = $1
           AND (n.through > 0 OR EXISTS (SELECT 1 FROM reward_grants g
                WHERE g.campaign_id = s.campaign_id AND g.openid = s.openid AND g.notified_at IS NULL))
         ORDER BY s.campaign_id DESC",
    )
    .bind(openid)
    .fetch_all(db)
    .await
}

/// A reward granted and not told yet.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct GrantNews {
    pub id: i64,
    pub campaign_id: i64,
    pub name: String,
    pub code: Option<String>,
    pub status: String,
}

pub async fn untold_grants(pool: &PgPool, openid: &OpenId) -> sqlx::Result<Vec<GrantNews>> {
    sqlx::query_as(
        "SELECT g.id, g.campaign_id, t.name, g.code, g.status FROM reward_grants g
         JOIN reward_tiers t ON t.id = g.tier_id
         WHERE g.openid = $1 AND g.notified_at IS NULL AND g.status <> 'revoked'
         ORDER BY t.threshold, g.id",
    )
    .bind(openid)
    .fetch_all(pool)
    .await
}

/// What a sent notice covered.
pub struct Told<'a> {
    pub job: i64,
    pub openid: &'a OpenId,
    /// (campaign, newest referral id covered).
    pub through: &'a [(i64, i64)],
    pub grants: &'a [i64],
    pub channel: &'a str,
    /// The subscription template whose acceptance it used.
    pub subscription: Option<&'a str>,
    pub credits: i32,
}

/// The statement that finishes a notice job (`job` and `status` name its parameters): done
/// with `status`, or due again at once if news arrived while it was being sent (`again`).
macro_rules! finish_job {
    ($job:literal, $status:literal) => {
        concat!(
            "UPDATE outbox SET status = CASE WHEN again THEN 'pending' ELSE ",
            $status,
            " END, done_at = CASE WHEN again THEN NULL ELSE now() END, run_after = now(),
             attempts = CASE WHEN again THEN 0 ELSE attempts END, again = false, last_error = NULL
             WHERE id = ",
            $job
        )
    };
}

/// Records a sent notice in one statement: the watermarks, the grants told, the allowance or
/// acceptance spent, the log, and the job (due again at once if news arrived meanwhile). One
/// statement, so the inviter's leaderboard rows — which every batch crediting them updates —
/// are held for its run only, not across a transaction's round trips.
pub async fn told(pool: &PgPool, t: &Told<'_>) -> sqlx::Result<()> {
    // Rows in the push path's order (the follower, then the leaderboard, then grants, then the
    // job): the final SELECT reads the parts in that order, which is the order they run in. A
    // deadlock here would retry a notice that WeChat already delivered.
    sqlx::query(concat!(
        "WITH spent AS (
            UPDATE users SET cs_left = GREATEST(cs_left - 1, 0)
            WHERE openid = $1 AND $5 = 'custom'
            RETURNING 1
         ), watermarks AS (
            UPDATE inviter_stats s SET notified_through = GREATEST(s.notified_through, x.through)
            FROM unnest($2::bigint[], $3::bigint[]) AS x(campaign_id, through)
            WHERE s.openid = $1 AND s.campaign_id = x.campaign_id
            RETURNING 1
         ), grants AS (
            UPDATE reward_grants SET notified_at = now() WHERE id = ANY($4) RETURNING 1
         ), accepted AS (
            UPDATE notice_subscriptions SET spent_at = now()
            WHERE id = (SELECT id FROM notice_subscriptions
                        WHERE openid = $1 AND template_id = $6 AND spent_at IS NULL
                          AND withdrawn_at IS NULL ORDER BY id LIMIT 1)
            RETURNING 1
         ), logged AS (
            INSERT INTO message_log (openid, channel, outcome, credits) VALUES ($1, $5, 'sent', $7)
            RETURNING 1
         ), finished AS (",
        finish_job!("$8", "'sent'"),
        " RETURNING 1
         )
         SELECT (SELECT count(*) FROM spent), (SELECT count(*) FROM watermarks),
                (SELECT count(*) FROM grants), (SELECT count(*) FROM accepted),
                (SELECT count(*) FROM logged), (SELECT count(*) FROM finished)",
    ))
    .bind(t.openid)
    .bind(t.through.iter().map(|(c, _)| *c).collect::<Vec<_>>())
    .bind(t.through.iter().map(|(_, r)| *r).collect::<Vec<_>>())
    .bind(t.grants)
    .bind(t.channel)
    .bind(t.subscription)
    .bind(t.credits)
    .bind(t.job)
    .execute(pool)
    .await
    .map(drop)
}

/// One customer-service message spent (a notice or a poster).
pub async fn spend_custom(db: impl sqlx::PgExecutor<'_>, openid: &OpenId) -> sqlx::Result<()> {
    sqlx::query("UPDATE users SET cs_left = GREATEST(cs_left - 1, 0) WHERE openid = $1")
        .bind(openid)
        .execute(db)
        .await
        .map(drop)
}

/// What a refusal tells about the follower.
#[derive(Debug, Clone, Copy)]
pub enum Learned<'a> {
    /// The customer-service allowance is spent (45047).
    AllowanceSpent,
    /// The customer-service allowance is over, or the follower left (45015).
    AllowanceOver,
    /// The follower has no acceptance of this subscription template after all (43101).
    NotSubscribed(&'a str),
    Nothing,
}

/// WeChat refused a channel Fission thought open: remember what that says, so the next plan
/// skips it, and log the refusal (`outcome`: WeChat's errcode).
pub async fn refused(
    pool: &PgPool,
    openid: &OpenId,
    channel: &str,
    outcome: &str,
    learned: Learned<'_>,
) -> sqlx::Result<()> {
    let mut tx = pool.begin().await?;
    match learned {
        Learned::AllowanceSpent => {
            sqlx::query("UPDATE users SET cs_left = 0 WHERE openid = $1")
                .bind(openid)
                .execute(&mut *tx)
                .await?;
        }
        Learned::AllowanceOver => {
            sqlx::query(
                "UPDATE users SET cs_left = 0, cs_until = LEAST(cs_until, now()) WHERE openid = $1",
            )
            .bind(openid)
            .execute(&mut *tx)
            .await?;
        }
        Learned::NotSubscribed(template) => {
            sqlx::query(
                "UPDATE notice_subscriptions SET withdrawn_at = now()
                 WHERE openid = $1 AND template_id = $2 AND spent_at IS NULL AND withdrawn_at IS NULL",
            )
            .bind(openid)
            .bind(template)
            .execute(&mut *tx)
            .await?;
        }
        Learned::Nothing => {}
    }
    log(&mut *tx, openid, channel, outcome, 0).await?;
    tx.commit().await
}

/// No channel is open: the job waits until the follower can be reached (see `wake`).
pub async fn park(pool: &PgPool, job: i64, openid: &OpenId, credits: i32) -> sqlx::Result<()> {
    let mut tx = pool.begin().await?;
    log(&mut *tx, openid, "none", "waiting", credits).await?;
    sqlx::query(
        "UPDATE outbox SET status = 'waiting', again = false, channel = NULL WHERE id = $1",
    )
    .bind(job)
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}

/// Nothing (left) to tell: the job is done, or due again if news arrived meanwhile.
pub async fn nothing_to_tell(pool: &PgPool, job: i64) -> sqlx::Result<()> {
    finish(pool, job, "sent").await
}

async fn finish(db: impl sqlx::PgExecutor<'_>, job: i64, status: &str) -> sqlx::Result<()> {
    sqlx::query(finish_job!("$1", "$2"))
        .bind(job)
        .bind(status)
        .execute(db)
        .await
        .map(drop)
}

async fn log(
    db: impl sqlx::PgExecutor<'_>,
    openid: &OpenId,
    channel: &str,
    outcome: &str,
    credits: i32,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO message_log (openid, channel, outcome, credits) VALUES ($1, $2, $3, $4)",
    )
    .bind(openid)
    .bind(channel)
    .bind(outcome)
    .bind(credits)
    .execute(db)
    .await
    .map(drop)
}

/// The follower opened their invite page, which shows everything: what was waiting to be told
/// for this campaign counts as told. Returns how many friends (still counted) joined since the
/// page last showed them.
pub async fn seen_on_page(pool: &PgPool, openid: &OpenId, campaign_id: i64) -> sqlx::Result<i64> {
    let mut tx = pool.begin().await?;
    let fresh: Option<i64> = sqlx::query_scalar(
        "UPDATE inviter_stats s SET notified_through = GREATEST(s.notified_through, n.top),
                seen_through = GREATEST(s.seen_through, n.top)
         FROM (SELECT COALESCE(max(r.id), 0) AS top, count(*) FILTER (WHERE v.id IS NULL) AS fresh
               FROM referrals r LEFT JOIN referral_revocations v ON v.referral_id = r.id
               WHERE r.campaign_id = $1 AND r.inviter_openid = $2
                 AND r.id > (SELECT seen_through FROM inviter_stats
                             WHERE campaign_id = $1 AND openid = $2)) n
         WHERE s.campaign_id = $1 AND s.openid = $2
         RETURNING n.fresh",
    )
    .bind(campaign_id)
    .bind(openid)
    .fetch_optional(&mut *tx)
    .await?;
    sqlx::query(
        "UPDATE reward_grants SET notified_at = now()
         WHERE campaign_id = $1 AND openid = $2 AND notified_at IS NULL",
    )
    .bind(campaign_id)
    .bind(openid)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(fresh.unwrap_or(0))
}

/// Puts waiting notices back in the queue for followers who can be reached again (they wrote,
/// scanned or clicked, or accepted a subscription). Reads only the waiting notices (a partial
/// index), each joined to its follower by key: no cost on the push path, and a poll that grows
/// with the number of notices waiting, not with the ledger. Returns how many.
pub async fn wake(pool: &PgPool) -> sqlx::Result<u64> {
    sqlx::query(
        "UPDATE outbox o SET status = 'pending', run_after = now(), attempts = 0
         FROM users u
         WHERE o.status = 'waiting' AND u.openid = o.payload->>'openid'
           AND (u.subscribed OR u.state_at IS NULL)
           AND ((u.cs_left > 0 AND u.cs_until > now())
                OR EXISTS (SELECT 1 FROM notice_subscriptions s
                           JOIN campaigns c ON c.subscribe_template_id = s.template_id
                           WHERE s.openid = u.openid AND s.spent_at IS NULL AND s.withdrawn_at IS NULL))",
    )
    .execute(pool)
    .await
    .map(|r| r.rows_affected())
}

/// Messages by channel and outcome since `since` (the health page), and how many credits
/// they carried.
pub async fn log_summary(
    pool: &PgPool,
    since: DateTime<Utc>,
) -> sqlx::Result<Vec<(String, String, i64, i64)>> {
    sqlx::query_as(
        "SELECT channel, outcome, count(*), COALESCE(sum(credits), 0)::bigint FROM message_log
         WHERE at >= $1 GROUP BY channel, outcome ORDER BY channel, outcome",
    )
    .bind(since)
    .fetch_all(pool)
    .await
}
