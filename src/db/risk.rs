//! Risk review's tables: the counters the push path keeps per inviter (`risk_inviters`), the
//! signals that fired with their evidence (`risk_signals`) and every decision
//! (`risk_decisions`), plus what a decision does to the ledger, the leaderboard and the
//! rewards. Every decision other systems must hear of goes through `decide`.

use chrono::{DateTime, Utc};
use sqlx::{PgExecutor, PgPool};

use super::outbox::JobKind;
use super::Tx;
use crate::domain::{CampaignId, OpenId, RiskAction, RiskStatus, Signal};

/// An inviter's counters after a batch, with their campaign's policy (as stored).
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Observed {
    pub campaign_id: i64,
    pub openid: String,
    pub status: String,
    pub cleared: bool,
    #[serde(deserialize_with = "from_micros")]
    pub recent: Vec<DateTime<Utc>>,
    pub friends: i32,
    pub friends_left: i32,
    pub friends_active: i32,
    /// When the inviter was themselves credited as a friend (the earliest), if ever.
    pub invited_at: Option<DateTime<Utc>>,
    pub risk_policy: String,
    pub risk_per_minute: i32,
    pub risk_per_hour: i32,
    pub risk_left_percent: i32,
    pub risk_left_min_friends: i32,
    pub risk_block_per_minute: i32,
    pub risk_silent_percent: i32,
    pub risk_burst_min: i32,
    pub risk_burst_percent: i32,
    /// The signals recorded for the inviter so far.
    #[serde(default)]
    pub signals: Vec<Recorded>,
}

/// A signal as recorded: the strongest value it reached, against which threshold.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
pub struct Recorded {
    pub name: String,
    pub value: f64,
    pub threshold: f64,
}

/// Times given as microseconds since the epoch.
fn from_micros<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<DateTime<Utc>>, D::Error> {
    let micros: Vec<i64> = serde::Deserialize::deserialize(d)?;
    micros
        .into_iter()
        .map(|m| {
            DateTime::from_timestamp_micros(m)
                .ok_or_else(|| serde::de::Error::custom(format!("time out of range: {m} µs")))
        })
        .collect()
}

/// A follower who did something in a batch (a message, menu click or scan) while, before it,
/// nothing of theirs came after their latest follow: their previous interaction, and the
/// batch's latest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interaction<'a> {
    pub openid: &'a OpenId,
    pub before: Option<DateTime<Utc>>,
    pub latest: DateTime<Utc>,
}

/// What a batch adds to the inviters' counters (`db::batch::count` adds it): its credits
/// (campaign, inviter, CreateTime), friends lost to the revoke window (campaign, inviter: one
/// entry per friend) and friends' first interactions after their credit. Only the latest
/// `kept` credit times are kept.
#[derive(Debug, Default)]
pub struct Observation<'a> {
    pub credits: Vec<(CampaignId, &'a OpenId, DateTime<Utc>)>,
    pub lost: Vec<(CampaignId, &'a OpenId)>,
    pub interactions: Vec<Interaction<'a>>,
    pub kept: usize,
}

impl Observation<'_> {
    pub fn is_empty(&self) -> bool {
        self.credits.is_empty() && self.lost.is_empty() && self.interactions.is_empty()
    }
}

/// The whole account's follows in each span of follow buckets (first and last bucket start, unix
/// seconds, both included), every instance's writers summed; in the order asked.
pub async fn account_follows(tx: &mut Tx<'_>, spans: &[(i64, i64)]) -> sqlx::Result<Vec<i64>> {
    if spans.is_empty() {
        return Ok(Vec::new());
    }
    sqlx::query_scalar(
        "SELECT (SELECT COALESCE(sum(f.follows), 0)::bigint FROM account_follows f
                 WHERE f.bucket BETWEEN x.first AND x.last)
         FROM unnest($1::bigint[], $2::bigint[]) WITH ORDINALITY AS x(first, last, n)
         ORDER BY x.n",
    )
    .bind(spans.iter().map(|s| s.0).collect::<Vec<_>>())
    .bind(spans.iter().map(|s| s.1).collect::<Vec<_>>())
    .fetch_all(&mut **tx)
    .await
}

/// Forgets the account's follow buckets older than `before` (unix seconds): the scene-burst
/// signal only ever reads the last minute.
pub async fn forget_follows(pool: &PgPool, before: i64) -> sqlx::Result<u64> {
    sqlx::query("DELETE FROM account_follows WHERE bucket < $1")
        .bind(before)
        .execute(pool)
        .await
        .map(|r| r.rows_affected())
}

/// Keeps the strongest value each fired signal reached (campaign, inviter, signal), rows in key
/// order.
pub async fn record_signals(
    tx: &mut Tx<'_>,
    fired: &[(CampaignId, &str, &Signal)],
) -> sqlx::Result<()> {
    if fired.is_empty() {
        return Ok(());
    }
    let mut fired = fired.to_vec();
    fired.sort_by(|a, b| (a.0 .0, a.1, &a.2.name).cmp(&(b.0 .0, b.1, &b.2.name)));
    sqlx::query(
        "INSERT INTO risk_signals AS s (campaign_id, openid, name, value, threshold, at)
         SELECT c, o, n, v, t, a
         FROM unnest($1::bigint[], $2::text[], $3::text[], $4::float8[], $5::float8[],
                     $6::timestamptz[]) WITH ORDINALITY AS x(c, o, n, v, t, a, i)
         ORDER BY i
         ON CONFLICT (campaign_id, openid, name) DO UPDATE
            SET value = EXCLUDED.value, threshold = EXCLUDED.threshold, at = EXCLUDED.at
            WHERE EXCLUDED.value > s.value OR EXCLUDED.threshold <> s.threshold",
    )
    .bind(fired.iter().map(|f| f.0 .0).collect::<Vec<_>>())
    .bind(fired.iter().map(|f| f.1).collect::<Vec<_>>())
    .bind(fired.iter().map(|f| f.2.name.as_str()).collect::<Vec<_>>())
    .bind(fired.iter().map(|f| f.2.value).collect::<Vec<_>>())
    .bind(fired.iter().map(|f| f.2.threshold).collect::<Vec<_>>())
    .bind(fired.iter().map(|f| f.2.at).collect::<Vec<_>>())
    .execute(&mut **tx)
    .await
    .map(drop)
}

/// A decision about an inviter in a campaign.
pub struct Decision<'a> {
    pub campaign: CampaignId,
    pub openid: &'a OpenId,
    /// The status change; `None` when the decision is only that rewards are held.
    pub action: Option<RiskAction>,
    /// The operator's name; `None` when Fission decided by itself.
    pub operator: Option<&'a str>,
    /// Reward tiers the inviter reached while their rewards are withheld.
    pub held_tiers: &'a [i64],
}

/// What a decision did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Decided {
    pub decision_id: Option<i64>,
    /// Credits cancelled by a block.
    pub cancelled: u64,
    /// Tiers granted by an approval.
    pub granted: Vec<i64>,
}

/// Records a decision and does what it means, in the caller's transaction:
/// - `flag` / `hold` / `reject`: the status (hold and reject withhold rewards from now on);
/// - `block`: the inviter's live credits cancelled as ledger entries, their leaderboard row
///   recounted, their rewards revoked and reward codes returned to the pool, and the
///   campaign's block text queued for them;
/// - `approve`: cleared, and granted every tier their count reaches (their notice tells them);
/// - `unblock`: cleared; they earn again from now on (cancelled credits stay cancelled).
///
/// Takes the inviter's leaderboard row, then their risk row: the order of the push path.
pub async fn decide(tx: &mut Tx<'_>, d: &Decision<'_>) -> sqlx::Result<Decided> {
    let mut news = News::default();
    if !d.held_tiers.is_empty() {
        news.held(tx, d).await?;
    }
    let Some(action) = d.action else {
        news.tell(tx).await?;
        return Ok(Decided::default());
    };
    lock_stats(tx, d.campaign, d.openid).await?;
    let decision_id: i64 = sqlx::query_scalar(
        "WITH r AS (
            INSERT INTO risk_inviters AS r (campaign_id, openid, status, changed_at, reviewed_at, cleared_at)
            VALUES ($1, $2, $3, now(), CASE WHEN $4::text IS NULL THEN NULL ELSE now() END,
                    CASE WHEN $5 IN ('approve', 'unblock') THEN now() END)
            ON CONFLICT (campaign_id, openid) DO UPDATE
               SET status = EXCLUDED.status, changed_at = now(), reviewed_at = EXCLUDED.reviewed_at,
                   cleared_at = CASE WHEN $5 IN ('approve', 'unblock') THEN now()
                                     WHEN $5 IN ('reject', 'block') THEN NULL
                                     ELSE r.cleared_at END
            RETURNING 1
         )
         INSERT INTO risk_decisions (campaign_id, openid, action, operator)
         SELECT $1, $2, $5, $4 FROM r RETURNING id",
    )
    .bind(d.campaign.0)
    .bind(d.openid.as_str())
    .bind(action.status().as_str())
    .bind(d.operator)
    .bind(action.as_str())
    .fetch_one(&mut **tx)
    .await?;
    let mut decided = Decided {
        decision_id: Some(decision_id),
        ..Decided::default()
    };
    match action {
        RiskAction::Flag | RiskAction::Hold => {
            news.about_inviter(tx, d, "inviter.flagged", action, 0)
                .await?;
        }
        RiskAction::Block => {
            news.revoked = cancel_credits(tx, d.campaign, d.openid).await?;
            decided.cancelled = news.revoked.len() as u64;
            take_rewards_back(tx, d.campaign, d.openid).await?;
            queue_block_text(tx, d.campaign, d.openid).await?;
            news.about_inviter(tx, d, "inviter.blocked", action, decided.cancelled)
                .await?;
        }
        RiskAction::Approve => {
            let granted = grant_reached(tx, d.campaign, d.openid).await?;
            decided.granted = granted.iter().map(|(tier, _)| *tier).collect();
            news.granted = granted.into_iter().map(|(_, grant)| grant).collect();
            if !decided.granted.is_empty() {
                queue_notice(tx, d.openid).await?;
            }
        }
        RiskAction::Reject | RiskAction::Unblock => {}
    }
    news.tell(tx).await?;
    Ok(decided)
}

/// What a decision tells other systems (webhooks), written in the decision's transaction:
/// `reward.held`, `inviter.flagged`, `inviter.blocked`, and the `referral.revoked` and
/// `reward.granted` of the credits a block cancels and the rewards an approval grants.
#[derive(Default)]
struct News {
    facts: Vec<(&'static str, serde_json::Value)>,
    order_key: String,
    revoked: Vec<i64>,
    granted: Vec<i64>,
}

impl News {
    async fn held(&mut self, tx: &mut Tx<'_>, d: &Decision<'_>) -> sqlx::Result<()> {
        self.order_key = d.openid.to_string();
        let tiers: Vec<(i64, String, i32)> = sqlx::query_as(
            "SELECT id, name, threshold FROM reward_tiers WHERE id = ANY($1) ORDER BY threshold",
        )
        .bind(d.held_tiers)
        .fetch_all(&mut **tx)
        .await?;
        for (id, name, threshold) in tiers {
            self.facts.push((
                "reward.held",
                serde_json::json!({
                    "campaign_id": d.campaign.0, "openid": d.openid.as_str(),
                    "tier_id": id, "tier": name, "threshold": threshold,
                }),
            ));
        }
        Ok(())
    }

    async fn about_inviter(
        &mut self,
        tx: &mut Tx<'_>,
        d: &Decision<'_>,
        event_type: &'static str,
        action: RiskAction,
        cancelled: u64,
    ) -> sqlx::Result<()> {
        self.order_key = d.openid.to_string();
        let signals: serde_json::Value = sqlx::query_scalar(
            "SELECT coalesce(jsonb_agg(jsonb_build_object('name', name, 'value', value,
                                  'threshold', threshold, 'at', at) ORDER BY name), '[]')
             FROM risk_signals WHERE campaign_id = $1 AND openid = $2",
        )
        .bind(d.campaign.0)
        .bind(d.openid.as_str())
        .fetch_one(&mut **tx)
        .await?;
        let mut data = serde_json::json!({
            "campaign_id": d.campaign.0, "openid": d.openid.as_str(),
            "status": action.status().as_str(), "operator": d.operator, "signals": signals,
        });
        if action == RiskAction::Block {
            data["cancelled_credits"] = cancelled.into();
        }
        self.facts.push((event_type, data));
        Ok(())
    }

    async fn tell(self, tx: &mut Tx<'_>) -> sqlx::Result<()> {
        if self.facts.is_empty() && self.revoked.is_empty() && self.granted.is_empty() {
            return Ok(());
        }
        let facts: Vec<super::webhooks::Fact<'_>> = self
            .facts
            .into_iter()
            .map(|(event_type, data)| super::webhooks::Fact {
                event_type,
                order_key: &self.order_key,
                data,
            })
            .collect();
        super::webhooks::record_batch(tx, &facts, &[], &self.revoked, &self.granted, &[])
            .await
            .map(drop)
    }
}

/// Holds the inviter's leaderboard row and risk row (in the push path's order) and says where
/// they stand.
pub async fn lock(
    tx: &mut Tx<'_>,
    campaign: CampaignId,
    openid: &OpenId,
) -> sqlx::Result<RiskStatus> {
    lock_stats(tx, campaign, openid).await?;
    let status: Option<String> = sqlx::query_scalar(
        "SELECT status FROM risk_inviters WHERE campaign_id = $1 AND openid = $2 FOR UPDATE",
    )
    .bind(campaign.0)
    .bind(openid.as_str())
    .fetch_optional(&mut **tx)
    .await?;
    Ok(status
        .and_then(|s| RiskStatus::parse(&s))
        .unwrap_or(RiskStatus::Ok))
}

/// Holds the inviter's leaderboard row (if they have one) for the rest of the transaction.
async fn lock_stats(tx: &mut Tx<'_>, campaign: CampaignId, openid: &OpenId) -> sqlx::Result<()> {
    sqlx::query("SELECT 1 FROM inviter_stats WHERE campaign_id = $1 AND openid = $2 FOR UPDATE")
        .bind(campaign.0)
        .bind(openid.as_str())
        .fetch_optional(&mut **tx)
        .await
        .map(drop)
}

/// Cancels the inviter's live credits in the campaign as revocations naming their latest block,
/// and recounts their leaderboard row (which the caller holds). Returns the referrals cancelled.
pub async fn cancel_credits(
    tx: &mut Tx<'_>,
    campaign: CampaignId,
    openid: &OpenId,
) -> sqlx::Result<Vec<i64>> {
    let cancelled: Vec<i64> = sqlx::query_scalar(
        "INSERT INTO referral_revocations (referral_id, event_id, revoked_at, reason, decision_id)
         SELECT r.id, NULL, now(), 'blocked',
                (SELECT max(d.id) FROM risk_decisions d
                 WHERE d.campaign_id = $1 AND d.openid = $2 AND d.action = 'block')
         FROM referrals r
         WHERE r.campaign_id = $1 AND r.inviter_openid = $2
           AND NOT EXISTS (SELECT 1 FROM referral_revocations v WHERE v.referral_id = r.id)
         ORDER BY r.id
         ON CONFLICT (referral_id) DO NOTHING
         RETURNING referral_id",
    )
    .bind(campaign.0)
    .bind(openid.as_str())
    .fetch_all(&mut **tx)
    .await?;
    super::referrals::recount(tx, &[(campaign, openid)]).await?;
    Ok(cancelled)
}

/// Revokes the inviter's grants in the campaign and returns their reward codes to the pool.
async fn take_rewards_back(
    tx: &mut Tx<'_>,
    campaign: CampaignId,
    openid: &OpenId,
) -> sqlx::Result<()> {
    sqlx::query(
        "WITH g AS (
            UPDATE reward_grants SET status = 'revoked'
            WHERE campaign_id = $1 AND openid = $2 AND status <> 'revoked'
            RETURNING tier_id, code
         )
         UPDATE reward_codes c SET granted_to = NULL, granted_at = NULL
         FROM g WHERE c.tier_id = g.tier_id AND c.code = g.code AND c.granted_to = $2",
    )
    .bind(campaign.0)
    .bind(openid.as_str())
    .execute(&mut **tx)
    .await
    .map(drop)
}

/// Queues the campaign's block text for the inviter (sent by the outbox worker).
async fn queue_block_text(
    tx: &mut Tx<'_>,
    campaign: CampaignId,
    openid: &OpenId,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO outbox (kind, payload)
         SELECT $3, jsonb_build_object('openid', $2::text, 'text', c.block_text, 'template_id', NULL)
         FROM campaigns c WHERE c.id = $1 AND c.block_text <> ''",
    )
    .bind(campaign.0)
    .bind(openid.as_str())
    .bind(JobKind::Message.as_str())
    .execute(&mut **tx)
    .await
    .map(drop)
}

/// Grants every tier of the campaign the inviter's live count reaches and was not granted yet:
/// (tier, grant) of each.
async fn grant_reached(
    tx: &mut Tx<'_>,
    campaign: CampaignId,
    openid: &OpenId,
) -> sqlx::Result<Vec<(i64, i64)>> {
    let invites = super::referrals::invites_of(&mut **tx, campaign.0, openid).await?;
    let mut granted = Vec::new();
    for tier in super::campaigns::tiers(&mut **tx, campaign.0).await? {
        if tier.threshold > invites {
            continue;
        }
        if let Some(grant) = super::campaigns::grant(tx, &tier, openid).await? {
            granted.push((tier.id, grant.id));
        }
    }
    Ok(granted)
}

/// Opens (or marks for another round) the follower's notice job, as a credit does.
pub async fn queue_notice(tx: &mut Tx<'_>, openid: &OpenId) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO outbox (kind, payload, coalesce_key)
         VALUES ($2, jsonb_build_object('openid', $1::text), 'notice:' || $1)
         ON CONFLICT (coalesce_key) WHERE status IN ('pending', 'waiting')
         DO UPDATE SET again = true",
    )
    .bind(openid.as_str())
    .bind(JobKind::Notice.as_str())
    .execute(&mut **tx)
    .await
    .map(drop)
}

/// One inviter in the review queue.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct QueueRow {
    pub campaign_id: i64,
    pub campaign_name: String,
    pub openid: String,
    pub nickname: Option<String>,
    pub status: String,
    pub friends: i32,
    pub friends_left: i32,
    pub invites: i32,
    pub pending: bool,
    pub changed_at: DateTime<Utc>,
    pub signals: String,
}

/// Inviters who are not `ok`: those no operator decided on yet first, newest first.
pub async fn queue(pool: &PgPool, limit: i64) -> sqlx::Result<Vec<QueueRow>> {
    sqlx::query_as(
        "SELECT r.campaign_id, c.name AS campaign_name, r.openid, u.nickname, r.status, r.friends,
                r.friends_left, COALESCE(s.invites, 0) AS invites,
                r.reviewed_at IS NULL AS pending, r.changed_at,
                COALESCE((SELECT string_agg(g.name, ' ' ORDER BY g.name) FROM risk_signals g
                          WHERE g.campaign_id = r.campaign_id AND g.openid = r.openid), '') AS signals
         FROM risk_inviters r
         JOIN campaigns c ON c.id = r.campaign_id
         LEFT JOIN users u ON u.openid = r.openid
         LEFT JOIN inviter_stats s ON s.campaign_id = r.campaign_id AND s.openid = r.openid
         WHERE r.status <> 'ok'
         ORDER BY r.reviewed_at IS NULL DESC, r.changed_at DESC, r.campaign_id, r.openid
         LIMIT $1",
    )
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// An inviter's standing in a campaign.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Standing {
    pub status: String,
    pub friends: i32,
    pub friends_left: i32,
    pub cleared_at: Option<DateTime<Utc>>,
    pub reviewed_at: Option<DateTime<Utc>>,
}

pub async fn standing(
    pool: &PgPool,
    campaign: i64,
    openid: &str,
) -> sqlx::Result<Option<Standing>> {
    sqlx::query_as(
        "SELECT status, friends, friends_left, cleared_at, reviewed_at FROM risk_inviters
         WHERE campaign_id = $1 AND openid = $2",
    )
    .bind(campaign)
    .bind(openid)
    .fetch_optional(pool)
    .await
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SignalRow {
    pub campaign_id: i64,
    pub name: String,
    pub value: f64,
    pub threshold: f64,
    pub at: DateTime<Utc>,
}

/// The signals that fired for an inviter (one campaign, or all).
pub async fn signals_of(
    db: impl PgExecutor<'_>,
    campaign: Option<i64>,
    openid: &str,
) -> sqlx::Result<Vec<SignalRow>> {
    sqlx::query_as(
        "SELECT campaign_id, name, value, threshold, at FROM risk_signals
         WHERE openid = $1 AND ($2::bigint IS NULL OR campaign_id = $2)
         ORDER BY at, name",
    )
    .bind(openid)
    .bind(campaign)
    .fetch_all(db)
    .await
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DecisionRow {
    pub campaign_id: i64,
    pub action: String,
    pub operator: Option<String>,
    pub at: DateTime<Utc>,
}

/// Every decision about an inviter (one campaign, or all), newest first.
pub async fn decisions_of(
    pool: &PgPool,
    campaign: Option<i64>,
    openid: &str,
) -> sqlx::Result<Vec<DecisionRow>> {
    sqlx::query_as(
        "SELECT campaign_id, action, operator, at FROM risk_decisions
         WHERE openid = $1 AND ($2::bigint IS NULL OR campaign_id = $2)
         ORDER BY id DESC",
    )
    .bind(openid)
    .bind(campaign)
    .fetch_all(pool)
    .await
}

/// The most severe status an inviter has in any campaign (`ok` when none).
pub async fn worst_status(db: impl PgExecutor<'_>, openid: &str) -> sqlx::Result<RiskStatus> {
    let rows: Vec<String> =
        sqlx::query_scalar("SELECT status FROM risk_inviters WHERE openid = $1")
            .bind(openid)
            .fetch_all(db)
            .await?;
    Ok(rows
        .iter()
        .filter_map(|s| RiskStatus::parse(s))
        .max()
        .unwrap_or(RiskStatus::Ok))
}

/// The status of each of `openids` that is not `ok` (in `campaign`, or the most severe across
/// campaigns), for marking leaderboard rows.
pub async fn statuses(
    pool: &PgPool,
    campaign: Option<i64>,
    openids: &[&str],
) -> sqlx::Result<Vec<(String, RiskStatus)>> {
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT openid, status FROM risk_inviters
         WHERE openid = ANY($1) AND ($2::bigint IS NULL OR campaign_id = $2) AND status <> 'ok'",
    )
    .bind(openids)
    .bind(campaign)
    .fetch_all(pool)
    .await?;
    let mut worst: std::collections::BTreeMap<String, RiskStatus> = Default::default();
    for (openid, status) in rows {
        if let Some(s) = RiskStatus::parse(&status) {
            let e = worst.entry(openid).or_insert(s);
            *e = (*e).max(s);
        }
    }
    Ok(worst.into_iter().collect())
}

/// Tiers of the campaign the inviter's count reaches that were not granted (what approving
/// would grant).
pub async fn waiting_tiers(
    pool: &PgPool,
    campaign: i64,
    openid: &str,
) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar(
        "SELECT t.name FROM reward_tiers t
         WHERE t.campaign_id = $1
           AND t.threshold <= COALESCE((SELECT invites FROM inviter_stats
                                        WHERE campaign_id = $1 AND openid = $2), 0)
           AND NOT EXISTS (SELECT 1 FROM reward_grants g WHERE g.tier_id = t.id AND g.openid = $2)
         ORDER BY t.threshold",
    )
    .bind(campaign)
    .bind(openid)
    .fetch_all(pool)
    .await
}

/// A campaign's risk policy, as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PolicyRow {
    pub risk_policy: String,
    pub risk_per_minute: i32,
    pub risk_per_hour: i32,
    pub risk_left_percent: i32,
    pub risk_left_min_friends: i32,
    pub risk_block_per_minute: i32,
    pub block_text: String,
    /// Days a reached tier waits before it is granted (0 = at once).
    pub reward_delay_days: i32,
    pub risk_silent_percent: i32,
    /// The scene-burst signal: least credits within 60 s (0 = off) and least share (%) of the
    /// account's follows in that minute.
    pub risk_burst_min: i32,
    pub risk_burst_percent: i32,
}

pub async fn policy(db: impl PgExecutor<'_>, campaign: i64) -> sqlx::Result<Option<PolicyRow>> {
    sqlx::query_as(
        "SELECT risk_policy, risk_per_minute, risk_per_hour, risk_left_percent,
                risk_left_min_friends, risk_block_per_minute, block_text, reward_delay_days,
                risk_silent_percent, risk_burst_min, risk_burst_percent
         FROM campaigns WHERE id = $1",
    )
    .bind(campaign)
    .fetch_optional(db)
    .await
}

/// Sets a campaign's risk policy (already validated); `false` if there is no such campaign.
pub async fn set_policy(pool: &PgPool, campaign: i64, p: &PolicyRow) -> sqlx::Result<bool> {
    sqlx::query(
        "UPDATE campaigns SET risk_policy = $2, risk_per_minute = $3, risk_per_hour = $4,
                risk_left_percent = $5, risk_left_min_friends = $6, risk_block_per_minute = $7,
                block_text = $8, reward_delay_days = $9, risk_silent_percent = $10,
                risk_burst_min = $11, risk_burst_percent = $12
         WHERE id = $1",
    )
    .bind(campaign)
    .bind(&p.risk_policy)
    .bind(p.risk_per_minute)
    .bind(p.risk_per_hour)
    .bind(p.risk_left_percent)
    .bind(p.risk_left_min_friends)
    .bind(p.risk_block_per_minute)
    .bind(&p.block_text)
    .bind(p.reward_delay_days)
    .bind(p.risk_silent_percent)
    .bind(p.risk_burst_min)
    .bind(p.risk_burst_percent)
    .execute(pool)
    .await
    .map(|r| r.rows_affected() == 1)
}

/// Of an inviter's friends in a campaign: how many never did anything after following (no
/// message, menu click or scan after their follow), and how many there are. Read for the
/// review page only, over that inviter's credits.
pub async fn silent_friends(
    pool: &PgPool,
    campaign: i64,
    openid: &str,
) -> sqlx::Result<(i64, i64)> {
    sqlx::query_as(
        "SELECT count(*) FILTER (WHERE u.last_interaction_at IS NULL
                                    OR u.last_interaction_at <= r.credited_at),
                count(*)
         FROM referrals r LEFT JOIN users u ON u.openid = r.invitee_openid
         WHERE r.campaign_id = $1 AND r.inviter_openid = $2",
    )
    .bind(campaign)
    .bind(openid)
    .fetch_one(pool)
    .await
}

/// One credit on an inviter's evidence timeline.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TimelineRow {
    pub invitee_openid: String,
    pub credited_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    /// `left` (the friend left within the window) or `blocked` (cancelled by a block).
    pub reason: Option<String>,
}

/// An inviter's credits in a campaign, newest first, for the evidence timeline.
pub async fn timeline(
    pool: &PgPool,
    campaign: i64,
    openid: &str,
    limit: i64,
) -> sqlx::Result<Vec<TimelineRow>> {
    sqlx::query_as(
        "SELECT r.invitee_openid, r.credited_at, v.revoked_at, v.reason
         FROM referrals r LEFT JOIN referral_revocations v ON v.referral_id = r.id
         WHERE r.campaign_id = $1 AND r.inviter_openid = $2
         ORDER BY r.credited_at DESC, r.id DESC LIMIT $3",
    )
    .bind(campaign)
    .bind(openid)
    .bind(limit)
    .fetch_all(pool)
    .await
}
