//! `webhooks` (the endpoints operators register) and `webhook_deliveries` (one row per event
//! and endpoint: the outbox of webhooks and their delivery log). Events are written in the
//! transaction that decides them; the delivery worker claims the oldest pending delivery of
//! each (endpoint, follower) queue, so one follower's events reach an endpoint in order.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::Tx;

/// Every event type an endpoint may subscribe to.
pub const EVENT_TYPES: [&str; 8] = [
    "referral.credited",
    "referral.revoked",
    "reward.granted",
    "reward.held",
    "inviter.flagged",
    "inviter.blocked",
    "code.scanned",
    "binding.completed",
];

/// The event the dashboard's "send test event" sends, to one endpoint whatever it subscribes to.
pub const TEST_EVENT: &str = "webhook.test";

#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct Webhook {
    pub id: i64,
    pub url: String,
    pub events: Vec<String>,
    pub created_at: DateTime<Utc>,
}

pub async fn create(
    pool: &PgPool,
    url: &str,
    secret: &str,
    events: &[String],
) -> sqlx::Result<i64> {
    sqlx::query_scalar(
        "INSERT INTO webhooks (url, secret, events) VALUES ($1, $2, $3) RETURNING id",
    )
    .bind(url)
    .bind(secret)
    .bind(events)
    .fetch_one(pool)
    .await
}

pub async fn list(pool: &PgPool) -> sqlx::Result<Vec<Webhook>> {
    sqlx::query_as("SELECT id, url, events, created_at FROM webhooks ORDER BY id")
        .fetch_all(pool)
        .await
}

/// Removes an endpoint and its deliveries (pending ones are never sent). False if unknown.
pub async fn delete(pool: &PgPool, id: i64) -> sqlx::Result<bool> {
    let done = sqlx::query("DELETE FROM webhooks WHERE id = $1")
        .bind(id)
        .execute(pool)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Records an event for every endpoint subscribed to `event_type`, in the caller's
/// transaction (no rows when none is). `order_key` is the follower the event is about: one
/// follower's events reach an endpoint in the order they were recorded.
pub async fn emit(
    conn: &mut PgConnection,
    event_type: &str,
    order_key: &str,
    data: Value,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO webhook_deliveries (webhook_id, event_id, event_type, order_key, data)
         SELECT w.id, $1, $2, $3, $4 FROM webhooks w WHERE w.events && ARRAY[$2, '*']
         ORDER BY w.id",
    )
    .bind(Uuid::new_v4())
    .bind(event_type)
    .bind(order_key)
    .bind(data)
    .execute(conn)
    .await
    .map(drop)
}

/// Queues the test event for one endpoint. False if the endpoint is unknown.
pub async fn emit_test(pool: &PgPool, webhook_id: i64, data: Value) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "INSERT INTO webhook_deliveries (webhook_id, event_id, event_type, order_key, data)
         SELECT id, $2, $3, 'test', $4 FROM webhooks WHERE id = $1",
    )
    .bind(webhook_id)
    .bind(Uuid::new_v4())
    .bind(TEST_EVENT)
    .bind(data)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// An event a batch of pushes decided, with its data already built.
pub struct Fact<'a> {
    pub event_type: &'a str,
    pub order_key: &'a str,
    pub data: Value,
}

/// A scan of (or follow through) a binding code: (scene, openid, "subscribe"|"SCAN", time).
pub struct BindingScan<'a> {
    pub scene_str: &'a str,
    pub openid: &'a str,
    pub event: &'a str,
    pub at: DateTime<Utc>,
}

/// What a batch of pushes tells other systems, in one statement: completes the bindings its
/// scans name (the earliest scan of a pending, unexpired binding wins; a binding completed
/// already changes nothing), and records for every subscribed endpoint the batch's events —
/// `facts`, the credits, revocations and reward grants (by id; their data is read from the
/// rows this transaction wrote), and the bindings completed — in that order.
/// Returns how many bindings were completed.
pub async fn record_batch(
    tx: &mut Tx<'_>,
    facts: &[Fact<'_>],
    credits: &[i64],
    revocations: &[i64],
    grants: &[i64],
    scans: &[BindingScan<'_>],
) -> sqlx::Result<i64> {
    let (completed, _queued): (i64, i64) = sqlx::query_as(
        "WITH done AS (
            UPDATE bindings b SET openid = x.o, event = x.e, completed_at = x.a
            FROM (SELECT DISTINCT ON (s) s, o, e, a
                  FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[])
                       WITH ORDINALITY AS u(s, o, e, a, n)
                  ORDER BY s, a, n) x
            WHERE b.scene_str = x.s AND b.completed_at IS NULL AND b.expires_at > x.a
            RETURNING b.id, b.payload, b.openid, b.event, b.completed_at
         ), facts AS (
            SELECT 1 AS g, f.n, f.t, f.k, f.d
            FROM unnest($5::text[], $6::text[], $7::jsonb[]) WITH ORDINALITY AS f(t, k, d, n)
            UNION ALL
            SELECT 2, r.id, 'referral.credited', r.invitee_openid,
                   jsonb_build_object('referral_id', r.id, 'campaign_id', r.campaign_id,
                                      'inviter_openid', r.inviter_openid,
                                      'invitee_openid', r.invitee_openid, 'scene', r.scene,
                                      'credited_at', r.credited_at)
            FROM referrals r WHERE r.id = ANY($8)
            UNION ALL
            SELECT 3, r.id, 'referral.revoked', r.invitee_openid,
                   jsonb_build_object('referral_id', r.id, 'campaign_id', r.campaign_id,
                                      'inviter_openid', r.inviter_openid,
                                      'invitee_openid', r.invitee_openid, 'scene', r.scene,
                                      'credited_at', r.credited_at, 'revoked_at', v.revoked_at,
                                      'reason', v.reason)
            FROM referral_revocations v JOIN referrals r ON r.id = v.referral_id
            WHERE v.referral_id = ANY($9)
            UNION ALL
            SELECT 4, g.id, 'reward.granted', g.openid,
                   jsonb_build_object('grant_id', g.id, 'campaign_id', g.campaign_id,
                                      'openid', g.openid, 'tier_id', t.id, 'tier', t.name,
                                      'threshold', t.threshold, 'status', g.status,
                                      'code', g.code, 'granted_at', g.granted_at)
            FROM reward_grants g JOIN reward_tiers t ON t.id = g.tier_id WHERE g.id = ANY($10)
            UNION ALL
            SELECT 5, 0, 'binding.completed', d.openid,
                   jsonb_build_object('binding_id', d.id, 'payload', d.payload,
                                      'openid', d.openid, 'event', d.event,
                                      'completed_at', d.completed_at)
            FROM done d
         ), events AS MATERIALIZED (
            -- One id per event, the same for every endpoint it goes to.
            SELECT gen_random_uuid() AS id, facts.* FROM facts
         ), queued AS (
            INSERT INTO webhook_deliveries (webhook_id, event_id, event_type, order_key, data)
            SELECT w.id, e.id, e.t, e.k, e.d
            FROM events e JOIN webhooks w ON w.events && ARRAY[e.t, '*']
            ORDER BY e.g, e.n, w.id
            RETURNING 1
         )
         SELECT (SELECT count(*) FROM done), (SELECT count(*) FROM queued)",
    )
    .bind(scans.iter().map(|s| s.scene_str).collect::<Vec<_>>())
    .bind(scans.iter().map(|s| s.openid).collect::<Vec<_>>())
    .bind(scans.iter().map(|s| s.event).collect::<Vec<_>>())
    .bind(scans.iter().map(|s| s.at).collect::<Vec<_>>())
    .bind(facts.iter().map(|f| f.event_type).collect::<Vec<_>>())
    .bind(facts.iter().map(|f| f.order_key).collect::<Vec<_>>())
    .bind(facts.iter().map(|f| &f.data).collect::<Vec<_>>())
    .bind(credits)
    .bind(revocations)
    .bind(grants)
    .fetch_one(&mut **tx)
    .await?;
    Ok(completed)
}

/// A delivery claimed for an attempt, with what is needed to send it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Claimed {
    pub id: i64,
    pub event_id: Uuid,
    pub event_type: String,
    pub data: Value,
    pub occurred_at: DateTime<Utc>,
    pub attempts: i32,
    pub give_up_at: DateTime<Utc>,
    pub url: String,
    pub secret: String,
}

/// Claims up to `limit` due deliveries for `lease_secs` (the attempt's lease: a crashed
/// attempt is retried after it). Only the oldest pending delivery of an (endpoint, follower)
/// queue is claimable, so a delivery in flight or waiting for its retry holds back the later
/// ones of its queue. Concurrent workers skip each other's rows.
pub async fn claim(pool: &PgPool, limit: i64, lease_secs: i64) -> sqlx::Result<Vec<Claimed>> {
    sqlx::query_as(
        "UPDATE webhook_deliveries d
         SET run_after = now() + make_interval(secs => $2), attempts = d.attempts + 1,
             last_attempt_at = now()
         FROM webhooks w
         WHERE w.id = d.webhook_id AND d.id IN (
             SELECT q.id FROM webhook_deliveries q
             WHERE q.status = 'pending' AND q.run_after <= now()
               AND NOT EXISTS (SELECT 1 FROM webhook_deliveries p
                               WHERE p.webhook_id = q.webhook_id AND p.order_key = q.order_key
                                 AND p.status = 'pending' AND p.id < q.id)
             ORDER BY q.id LIMIT $1 FOR UPDATE SKIP LOCKED)
         RETURNING d.id, d.event_id, d.event_type, d.data, d.occurred_at, d.attempts,
                   d.give_up_at, w.url, w.secret",
    )
    .bind(limit)
    .bind(lease_secs as f64)
    .fetch_all(pool)
    .await
}

/// The receiver answered 2xx.
pub async fn delivered(pool: &PgPool, id: i64, status: i32) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE webhook_deliveries SET status = 'delivered', delivered_at = now(),
                last_status = $2, last_error = NULL
         WHERE id = $1 AND status = 'pending'",
    )
    .bind(id)
    .bind(status)
    .execute(pool)
    .await
    .map(drop)
}

/// The attempt failed: tried again in `retry_secs`, or failed for good when that would be
/// past the delivery's give-up time.
pub async fn attempt_failed(
    pool: &PgPool,
    id: i64,
    status: Option<i32>,
    error: &str,
    retry_secs: i64,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE webhook_deliveries
         SET last_status = $2, last_error = $3,
             status = CASE WHEN now() + make_interval(secs => $4) > give_up_at
                           THEN 'failed' ELSE 'pending' END,
             run_after = now() + make_interval(secs => $4)
         WHERE id = $1 AND status = 'pending'",
    )
    .bind(id)
    .bind(status)
    .bind(error)
    .bind(retry_secs as f64)
    .execute(pool)
    .await
    .map(drop)
}

/// Sends a failed delivery again, now, with a new day of retries. False unless it had failed.
pub async fn replay(pool: &PgPool, id: i64) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "UPDATE webhook_deliveries
         SET status = 'pending', run_after = now(), give_up_at = now() + interval '1 day'
         WHERE id = $1 AND status = 'failed'",
    )
    .bind(id)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// One line of the delivery log.
#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct LogLine {
    pub id: i64,
    pub webhook_id: i64,
    pub url: String,
    pub event_id: Uuid,
    pub event_type: String,
    pub order_key: String,
    pub status: String,
    pub attempts: i32,
    pub occurred_at: DateTime<Utc>,
    pub last_attempt_at: Option<DateTime<Utc>>,
    pub last_status: Option<i32>,
    pub last_error: Option<String>,
    pub delivered_at: Option<DateTime<Utc>>,
}

/// The latest deliveries, newest first.
pub async fn log(pool: &PgPool, limit: i64) -> sqlx::Result<Vec<LogLine>> {
    sqlx::query_as(
        "SELECT d.id, d.webhook_id, w.url, d.event_id, d.event_type, d.order_key, d.status,
                d.attempts, d.occurred_at, d.last_attempt_at, d.last_status, d.last_error,
                d.delivered_at
         FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id
         ORDER BY d.id DESC LIMIT $1",
    )
    .bind(limit)
    .fetch_all(pool)
    .await
}
