//! The statements a batch of pushes writes across several tables, each one round trip: what the
//! batch must know as its followers are locked, the facts it records, and the counters every
//! batch shares. A lone push costs five round trips in all (with BEGIN and COMMIT), a batch of a
//! hundred the same five — a tier reached, a revocation or a risk decision adds its own.
//!
//! Within one statement the data-modifying parts run in the order the final SELECT reads them,
//! which is the order the rest of the push path takes rows in; a batch that deadlocks anyway is
//! retried by the caller.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use sqlx::types::Json;

use super::codes::SceneCode;
use super::events::NewEvent;
use super::outbox::JobKind;
use super::referrals::{NewCredit, StatsDelta};
use super::risk::{Observation, Observed};
use super::users::{PresenceState, UserRow};
use super::Tx;
use crate::domain::{CampaignId, OpenId, Scene};

/// What the database holds about a batch, read as its followers are locked.
pub struct Known {
    /// The followers' rows as they were before the batch (created if new), locked.
    pub followers: Vec<UserRow>,
    /// Dedupe keys already recorded.
    pub recorded: Vec<String>,
    /// The campaigns' version (the cache reloads when it moved).
    pub campaign_version: i64,
    /// The codes the batch's scenes name.
    pub codes: Vec<SceneCode>,
    /// Some webhook endpoint is registered (else the batch's events need not be recorded).
    pub webhooks: bool,
}

#[derive(Deserialize)]
struct CodeJson {
    id: i64,
    owner_openid: Option<String>,
    owner_nickname: Option<String>,
    channel_id: Option<i64>,
    permanent: bool,
    scene_id: Option<i32>,
    scene_str: Option<String>,
    expires_at: Option<DateTime<Utc>>,
}

/// Creates the `followers` not known yet and locks their rows until the transaction ends (in
/// openid order, so concurrent batches cannot deadlock on them), so two pushes about one
/// follower (on any instance) are decided one after the other; and reads which of `keys` are
/// recorded, the campaigns' version and the codes `scenes` name — one round trip.
///
/// The rows returned are the latest committed ones (a batch we waited for is seen), but the
/// rest is read from the snapshot taken before the wait: a key that batch recorded may be
/// missing here. `record` finds it then (its insert conflicts) and the batch runs again.
pub async fn known(
    tx: &mut Tx<'_>,
    followers: &[&OpenId],
    keys: &[&str],
    scenes: &[&Scene],
) -> sqlx::Result<Known> {
    let mut followers: Vec<&str> = followers.iter().map(|o| o.as_str()).collect();
    followers.sort_unstable();
    followers.dedup();
    let ids: Vec<i32> = scenes
        .iter()
        .filter_map(|s| match s {
            Scene::Id(id) => i32::try_from(*id).ok(),
            Scene::Str(_) => None,
        })
        .collect();
    let strs: Vec<&str> = scenes
        .iter()
        .filter_map(|s| match s {
            Scene::Str(s) => Some(s.as_str()),
            Scene::Id(_) => None,
        })
        .collect();
    #[allow(clippy::type_complexity)]
    let (users, recorded, campaign_version, codes, webhooks): (
        Json<Vec<UserRow>>,
        Vec<String>,
        i64,
        Json<Vec<CodeJson>>,
        bool,
    ) = sqlx::query_as(
        "WITH locked AS (
            INSERT INTO users AS u (openid)
            SELECT o FROM unnest($4::text[]) WITH ORDINALITY AS x(o, n) ORDER BY n
            ON CONFLICT (openid) DO UPDATE SET openid = EXCLUDED.openid
            RETURNING u.*
         )
         SELECT (SELECT COALESCE(json_agg(locked), '[]') FROM locked),
                ARRAY(SELECT e.dedupe_key FROM events e WHERE e.dedupe_key = ANY($1)),
                (SELECT version FROM campaign_version),
                (SELECT COALESCE(json_agg(json_build_object(
                     'id', c.id, 'owner_openid', c.owner_openid,
                     'owner_nickname', (SELECT u.nickname FROM users u WHERE u.openid = c.owner_openid),
                     'channel_id', c.channel_id, 'permanent', c.permanent,
                     'scene_id', c.scene_id, 'scene_str', c.scene_str, 'expires_at', c.expires_at)), '[]')
                 FROM invite_codes c
                 WHERE c.scene_id = ANY($2) OR c.scene_str = ANY($3)),
                EXISTS (SELECT 1 FROM webhooks)",
    )
    .bind(keys)
    .bind(ids)
    .bind(strs)
    .bind(followers)
    .fetch_one(&mut **tx)
    .await?;
    Ok(Known {
        followers: users.0,
        recorded,
        campaign_version,
        codes: codes
            .0
            .into_iter()
            .map(|c| SceneCode {
                id: c.id,
                owner_openid: c.owner_openid,
                owner_nickname: c.owner_nickname,
                channel_id: c.channel_id,
                permanent: c.permanent,
                scene_id: c.scene_id,
                scene_str: c.scene_str,
                expires_at: c.expires_at,
            })
            .collect(),
        webhooks,
    })
}

/// A credit to write, naming its push's event by dedupe key (the event is written by the same
/// statement).
pub struct CreditOf<'a> {
    pub credit: NewCredit<'a>,
    pub dedupe_key: &'a str,
}

/// What `record` wrote.
pub struct Recorded {
    /// (event id, dedupe key) of each event written; a key recorded meanwhile by another
    /// transaction is missing.
    pub events: Vec<(i64, String)>,
    /// (referral id, campaign, invitee) of each credit written; an invitee the ledger already
    /// had in that campaign is missing.
    pub credits: Vec<(i64, CampaignId, String)>,
}

#[derive(Deserialize)]
struct EventJson {
    id: i64,
    key: String,
}

#[derive(Deserialize)]
struct CreditJson {
    id: i64,
    campaign: i64,
    invitee: String,
}

/// Records the batch's facts in one statement: its events (with outcomes), the followers'
/// presence, and the credits — the ledger's unique key deciding each. Events in dedupe-key
/// order and credits in (campaign, invitee) order, as callers sort them.
pub async fn record(
    tx: &mut Tx<'_>,
    events: &[NewEvent<'_>],
    presence: &[PresenceState<'_>],
    credits: &[CreditOf<'_>],
) -> sqlx::Result<Recorded> {
    let (events_json, _presence, credits_json): (Json<Vec<EventJson>>, i64, Json<Vec<CreditJson>>) =
        sqlx::query_as(
            "WITH ev AS (
                INSERT INTO events (dedupe_key, openid, create_time, msg_type, event, event_key, ticket, outcome)
                SELECT k, o, c, m, e, ek, t, oc
                FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::text[], $5::text[],
                            $6::text[], $7::text[], $8::text[]) WITH ORDINALITY AS x(k, o, c, m, e, ek, t, oc, n)
                ORDER BY n
                ON CONFLICT (dedupe_key) DO NOTHING
                RETURNING id, dedupe_key
             ), presence AS (
                UPDATE users u SET subscribed = x.subscribed, followed_since = x.followed_since,
                       state_at = x.state_at, last_interaction_at = x.last_interaction_at,
                       cs_left = x.cs_left, cs_until = x.cs_until, cs_opened_at = x.cs_opened_at
                FROM unnest($9::text[], $10::boolean[], $11::timestamptz[], $12::timestamptz[],
                            $13::timestamptz[], $14::int[], $15::timestamptz[], $16::timestamptz[])
                     AS x(openid, subscribed, followed_since, state_at, last_interaction_at,
                          cs_left, cs_until, cs_opened_at)
                WHERE u.openid = ANY($9) AND u.openid = x.openid
                RETURNING 1
             ), cr AS (
                INSERT INTO referrals (campaign_id, invitee_openid, inviter_openid, scene, event_id, credited_at)
                SELECT x.c, x.i, x.o, x.s, ev.id, x.a
                FROM unnest($17::bigint[], $18::text[], $19::text[], $20::text[], $21::text[], $22::timestamptz[])
                     WITH ORDINALITY AS x(c, i, o, s, k, a, n)
                JOIN ev ON ev.dedupe_key = x.k
                ORDER BY x.n
                ON CONFLICT ON CONSTRAINT referrals_once_per_campaign DO NOTHING
                RETURNING id, campaign_id, invitee_openid
             )
             SELECT (SELECT COALESCE(json_agg(json_build_object('id', id, 'key', dedupe_key)), '[]') FROM ev),
                    (SELECT count(*) FROM presence),
                    (SELECT COALESCE(json_agg(json_build_object('id', id, 'campaign', campaign_id,
                                                                'invitee', invitee_openid)), '[]') FROM cr)",
        )
        .bind(events.iter().map(|e| e.dedupe_key).collect::<Vec<_>>())
        .bind(events.iter().map(|e| e.openid.as_str()).collect::<Vec<_>>())
        .bind(events.iter().map(|e| e.create_time).collect::<Vec<_>>())
        .bind(events.iter().map(|e| e.msg_type).collect::<Vec<_>>())
        .bind(events.iter().map(|e| e.event).collect::<Vec<_>>())
        .bind(events.iter().map(|e| e.event_key).collect::<Vec<_>>())
        .bind(events.iter().map(|e| e.ticket).collect::<Vec<_>>())
        .bind(events.iter().map(|e| e.outcome).collect::<Vec<_>>())
        .bind(presence.iter().map(|r| r.openid.as_str()).collect::<Vec<_>>())
        .bind(presence.iter().map(|r| r.subscribed).collect::<Vec<_>>())
        .bind(presence.iter().map(|r| r.followed_since).collect::<Vec<_>>())
        .bind(presence.iter().map(|r| r.state_at).collect::<Vec<_>>())
        .bind(presence.iter().map(|r| r.last_interaction_at).collect::<Vec<_>>())
        .bind(presence.iter().map(|r| r.cs_left).collect::<Vec<_>>())
        .bind(presence.iter().map(|r| r.cs_until).collect::<Vec<_>>())
        .bind(presence.iter().map(|r| r.cs_opened_at).collect::<Vec<_>>())
        .bind(credits.iter().map(|c| c.credit.campaign.0).collect::<Vec<_>>())
        .bind(credits.iter().map(|c| c.credit.invitee.as_str()).collect::<Vec<_>>())
        .bind(credits.iter().map(|c| c.credit.inviter.as_str()).collect::<Vec<_>>())
        .bind(credits.iter().map(|c| c.credit.scene).collect::<Vec<_>>())
        .bind(credits.iter().map(|c| c.dedupe_key).collect::<Vec<_>>())
        .bind(credits.iter().map(|c| c.credit.at).collect::<Vec<_>>())
        .fetch_one(&mut **tx)
        .await?;
    Ok(Recorded {
        events: events_json.0.into_iter().map(|e| (e.id, e.key)).collect(),
        credits: credits_json
            .0
            .into_iter()
            .map(|c| (c.id, CampaignId(c.campaign), c.invitee))
            .collect(),
    })
}

#[derive(Deserialize)]
struct CountJson {
    campaign: i64,
    openid: String,
    invites: i32,
}

/// What `count` counted.
pub struct Counted {
    /// Each leaderboard row's count: (campaign, inviter, invites).
    pub stats: Vec<(CampaignId, String, i32)>,
    /// The counters of every inviter the risk observation concerned.
    pub observed: Vec<Observed>,
}

/// Counts the batch into the rows every batch shares, in one statement, each table's rows in
/// key order: code counters (code id, scans, follows); then leaderboard rows, adding new
/// credits to each (every row the batch touches goes through here — also those whose credits
/// are only revoked, `added` 0 — so they are locked in one order before any recount; the time a
/// count was reached is the latest credit counted, right also when pushes arrive out of
/// order); then the inviters' notice jobs — one open per follower, marked `again` if one may
/// be being sent right now (it was claimed: a job not tried yet will read the news anyway, and
/// is only locked, not rewritten); then the account's follow buckets (bucket start, follows), in this
/// writer's own rows; last the inviters' risk counters, in (campaign, openid) order, returned
/// with their campaign's policy.
#[allow(clippy::too_many_arguments)]
pub async fn count(
    tx: &mut Tx<'_>,
    uses: &[(i64, i64, i64)],
    deltas: &[StatsDelta<'_>],
    notify: &[&OpenId],
    notice_delay: std::time::Duration,
    follows: &[(i64, i32)],
    writer: i16,
    risk: &Observation<'_>,
) -> sqlx::Result<Counted> {
    let mut notify: Vec<&str> = notify.iter().map(|o| o.as_str()).collect();
    notify.sort_unstable();
    notify.dedup();
    #[allow(clippy::type_complexity)]
    let (_locked, _counted, stats, _noticed, _followed, observed): (
        i64,
        i64,
        Json<Vec<CountJson>>,
        i64,
        i64,
        Json<Vec<Observed>>,
    ) = sqlx::query_as(
        "WITH locked AS (
            SELECT id FROM invite_codes WHERE id = ANY($1) ORDER BY id FOR UPDATE
         ), counted AS (
            UPDATE invite_codes c SET scans = c.scans + x.scans, follows = c.follows + x.follows
            FROM unnest($1::bigint[], $2::bigint[], $3::bigint[]) AS x(id, scans, follows)
            WHERE c.id = ANY($1) AND c.id = x.id
            RETURNING 1
         ), stats AS (
            INSERT INTO inviter_stats (campaign_id, openid, invites, reached_at)
            SELECT c, o, d, COALESCE(a, '-infinity')
            FROM unnest($4::bigint[], $5::text[], $6::int[], $7::timestamptz[]) WITH ORDINALITY AS x(c, o, d, a, n)
            ORDER BY n
            ON CONFLICT (campaign_id, openid) DO UPDATE
               SET invites = inviter_stats.invites + EXCLUDED.invites,
                   reached_at = GREATEST(inviter_stats.reached_at, EXCLUDED.reached_at)
            RETURNING campaign_id, openid, invites
         ), noticed AS (
            INSERT INTO outbox (kind, payload, coalesce_key, run_after)
            SELECT $10, jsonb_build_object('openid', o), 'notice:' || o,
                   now() + make_interval(secs => $9)
            FROM unnest($8::text[]) WITH ORDINALITY AS x(o, n) ORDER BY n
            ON CONFLICT (coalesce_key) WHERE status IN ('pending', 'waiting')
            DO UPDATE SET again = true WHERE outbox.attempts > 0 AND NOT outbox.again
            RETURNING 1
         ), followed AS (
            INSERT INTO account_follows AS f (bucket, writer, follows)
            SELECT b, $13, n FROM unnest($11::bigint[], $12::int[]) AS x(b, n) ORDER BY b
            ON CONFLICT (bucket, writer) DO UPDATE SET follows = f.follows + EXCLUDED.follows
            RETURNING 1
         ), rc AS (
            SELECT x.c AS campaign_id, x.o AS openid,
                   (array_agg(x.a ORDER BY x.a DESC))[1:$19] AS times, count(*)::int AS n
            FROM unnest($14::bigint[], $15::text[], $16::bigint[]) AS x(c, o, a) GROUP BY 1, 2
         ), rl AS (
            SELECT x.c AS campaign_id, x.o AS openid, count(*)::int AS n
            FROM unnest($17::bigint[], $18::text[]) AS x(c, o) GROUP BY 1, 2
         ), ra AS (
            -- A friend's first interaction after their credit: nothing of theirs after it
            -- before this batch, something in it.
            SELECT r.campaign_id, r.inviter_openid AS openid, count(*)::int AS n
            FROM unnest($20::text[], $21::timestamptz[], $22::timestamptz[]) AS x(o, b, a)
            JOIN referrals r ON r.invitee_openid = x.o AND r.invitee_openid = ANY($20)
            WHERE x.a > r.credited_at AND (x.b IS NULL OR x.b <= r.credited_at)
            GROUP BY 1, 2
         ), rd AS (
            SELECT campaign_id, openid, COALESCE(max(times), '{}') AS times,
                   sum(n)::int AS n, sum(left_n)::int AS left_n, sum(active_n)::int AS active_n
            FROM (SELECT campaign_id, openid, times, n, 0 AS left_n, 0 AS active_n FROM rc
                  UNION ALL SELECT campaign_id, openid, NULL, 0, n, 0 FROM rl
                  UNION ALL SELECT campaign_id, openid, NULL, 0, 0, n FROM ra) u
            GROUP BY 1, 2
         ), risk AS (
            INSERT INTO risk_inviters AS r
                (campaign_id, openid, recent, friends, friends_left, friends_active)
            SELECT campaign_id, openid, times, n, left_n, active_n FROM rd
            ORDER BY campaign_id, openid
            ON CONFLICT (campaign_id, openid) DO UPDATE
               -- Both newest first: times newer than the row's (pushes in order) go in
               -- front; only older ones need a sort.
               SET recent = CASE
                       WHEN cardinality(r.recent) = 0
                            OR EXCLUDED.recent[cardinality(EXCLUDED.recent)] >= r.recent[1]
                       THEN (EXCLUDED.recent || r.recent)[1:$19]
                       ELSE ARRAY(SELECT t FROM unnest(r.recent || EXCLUDED.recent) AS t
                                  ORDER BY t DESC LIMIT $19)
                   END,
                   friends = r.friends + EXCLUDED.friends,
                   friends_left = r.friends_left + EXCLUDED.friends_left,
                   friends_active = r.friends_active + EXCLUDED.friends_active
            RETURNING r.campaign_id, r.openid, r.status, r.cleared_at IS NOT NULL AS cleared,
                      r.recent, r.friends, r.friends_left, r.friends_active
         )
         SELECT (SELECT count(*) FROM locked),
                (SELECT count(*) FROM counted),
                (SELECT COALESCE(json_agg(json_build_object('campaign', campaign_id, 'openid', openid,
                                                            'invites', invites)), '[]') FROM stats),
                (SELECT count(*) FROM noticed),
                (SELECT count(*) FROM followed),
                (SELECT COALESCE(json_agg(o), '[]') FROM (
                    -- Credit times are microseconds since the epoch: a batch can return
                    -- thousands, and numbers are written and read far faster than dates.
                    SELECT risk.campaign_id, risk.openid, risk.status, risk.cleared, risk.recent,
                           risk.friends, risk.friends_left, risk.friends_active,
                           k.risk_policy, k.risk_per_minute, k.risk_per_hour,
                           k.risk_left_percent, k.risk_left_min_friends, k.risk_block_per_minute,
                           k.risk_silent_percent, k.risk_burst_min, k.risk_burst_percent,
                           (SELECT min(i.credited_at) FROM referrals i
                            WHERE i.invitee_openid = risk.openid) AS invited_at,
                           (SELECT COALESCE(json_agg(json_build_object(
                                'name', g.name, 'value', g.value, 'threshold', g.threshold)), '[]')
                            FROM risk_signals g
                            WHERE g.campaign_id = risk.campaign_id AND g.openid = risk.openid)
                               AS signals
                    FROM risk JOIN campaigns k ON k.id = risk.campaign_id) o)",
    )
    .bind(uses.iter().map(|u| u.0).collect::<Vec<_>>())
    .bind(uses.iter().map(|u| u.1).collect::<Vec<_>>())
    .bind(uses.iter().map(|u| u.2).collect::<Vec<_>>())
    .bind(deltas.iter().map(|d| d.campaign.0).collect::<Vec<_>>())
    .bind(deltas.iter().map(|d| d.inviter.as_str()).collect::<Vec<_>>())
    .bind(deltas.iter().map(|d| d.added).collect::<Vec<_>>())
    .bind(deltas.iter().map(|d| d.latest).collect::<Vec<_>>())
    .bind(notify)
    .bind(notice_delay.as_secs_f64())
    .bind(JobKind::Notice.as_str())
    .bind(follows.iter().map(|f| f.0).collect::<Vec<_>>())
    .bind(follows.iter().map(|f| f.1).collect::<Vec<_>>())
    .bind(writer)
    .bind(risk.credits.iter().map(|c| c.0 .0).collect::<Vec<_>>())
    .bind(risk.credits.iter().map(|c| c.1.as_str()).collect::<Vec<_>>())
    .bind(
        risk.credits
            .iter()
            .map(|c| c.2.timestamp_micros())
            .collect::<Vec<_>>(),
    )
    .bind(risk.lost.iter().map(|l| l.0 .0).collect::<Vec<_>>())
    .bind(risk.lost.iter().map(|l| l.1.as_str()).collect::<Vec<_>>())
    .bind(risk.kept as i32)
    .bind(
        risk.interactions
            .iter()
            .map(|i| i.openid.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(risk.interactions.iter().map(|i| i.before).collect::<Vec<_>>())
    .bind(risk.interactions.iter().map(|i| i.latest).collect::<Vec<_>>())
    .fetch_one(&mut **tx)
    .await?;
    Ok(Counted {
        stats: stats
            .0
            .into_iter()
            .map(|s| (CampaignId(s.campaign), s.openid, s.invites))
            .collect(),
        observed: observed.0,
    })
}
