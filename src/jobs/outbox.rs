//! Sends what the outbox holds. Jobs are claimed in rounds with a lease; a round's jobs are
//! sent with bounded concurrency — one follower's jobs one after another, in the order they
//! were queued — and each is marked sent in one statement as soon as WeChat accepts it. If the
//! process dies between the two, the lease runs out and that message is sent again: a message
//! in flight is the only one that can be duplicated, and nothing claimed is ever lost.
//!
//! When WeChat refuses everything (busy, quota spent, frequency limit, token rejected, no
//! answer), the worker pauses — 1 s after the first such failure, doubling up to 5 minutes while
//! they go on — and puts the rest of the round back uncounted, instead of trying every job. Each
//! round starts with one follower's jobs alone, so a storm costs one probe per pause.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use futures_util::stream::{self, StreamExt};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::db;
use crate::db::outbox::{Job, JobKind, MessageJob};
use crate::domain::OpenId;
use crate::poster::delivery::PosterJob;
use crate::services::{ServiceError, Services};
use crate::state::AppState;
use crate::wechat::WechatError;

/// Attempts before a job is parked as failed (visible in the dashboard, retryable there).
const MAX_ATTEMPTS: i32 = 8;
const BATCH: i64 = 64;
/// Followers whose jobs are sent at the same time.
const CONCURRENCY: usize = 16;
/// How often waiting notices are looked at again (a follower may have become reachable).
const WAKE_EVERY: Duration = Duration::from_secs(2);
/// errcodes that say nothing will get through for a while, whatever the message.
const WECHAT_WIDE: [i64; 6] = [-1, 45009, 45011, 40001, 40014, 42001];
const FIRST_PAUSE: Duration = Duration::from_secs(1);
const MAX_PAUSE: Duration = Duration::from_secs(300);

/// The worker's pause while WeChat refuses everything.
#[derive(Default)]
struct Pause {
    /// WeChat-wide failures in a row.
    failures: u32,
    until: Option<Instant>,
}

impl Pause {
    fn remaining(&self) -> Option<Duration> {
        self.until
            .map(|until| until.saturating_duration_since(Instant::now()))
            .filter(|left| !left.is_zero())
    }

    fn failed(&mut self) {
        // Jobs that were already in flight when the pause began fail too: one pause for all.
        if self.remaining().is_some() {
            return;
        }
        let pause = FIRST_PAUSE
            .saturating_mul(1 << self.failures.min(16))
            .min(MAX_PAUSE);
        self.failures += 1;
        tracing::warn!(
            pause_secs = pause.as_secs(),
            "WeChat refuses everything; the outbox pauses"
        );
        self.until = Some(Instant::now() + pause);
    }

    fn succeeded(&mut self) {
        self.failures = 0;
        self.until = None;
    }
}

fn pause_of(pause: &Mutex<Pause>) -> std::sync::MutexGuard<'_, Pause> {
    pause.lock().unwrap_or_else(|p| p.into_inner())
}

pub async fn run(state: AppState, mut shutdown: watch::Receiver<bool>) {
    let lease = i64::from(state.settings.outbox_lease_secs);
    let pause = Mutex::new(Pause::default());
    let mut woken_at = tokio::time::Instant::now();
    loop {
        if *shutdown.borrow() {
            return;
        }
        if woken_at.elapsed() >= WAKE_EVERY {
            woken_at = tokio::time::Instant::now();
            if let Err(e) = db::notices::wake(&state.pool).await {
                tracing::warn!(error = ?e, "could not look at waiting notices");
            }
        }
        let paused = pause_of(&pause).remaining();
        if let Some(left) = paused {
            tokio::select! {
                _ = tokio::time::sleep(left) => {}
                _ = shutdown.changed() => return,
            }
        }
        let jobs = match db::outbox::claim(&state.pool, BATCH, lease).await {
            Ok(jobs) => jobs,
            Err(e) => {
                tracing::warn!(error = ?e, "outbox claim failed");
                Vec::new()
            }
        };
        let idle = jobs.is_empty();
        send_round(&state, jobs, &pause).await;
        if idle {
            tokio::select! {
                _ = state.outbox_wake.notified() => {}
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                _ = shutdown.changed() => return,
            }
        }
    }
}

async fn send_round(state: &AppState, jobs: Vec<Job>, pause: &Mutex<Pause>) {
    let mut by_follower: BTreeMap<String, Vec<Job>> = BTreeMap::new();
    for job in jobs {
        let key = match job.payload.get("openid").and_then(|o| o.as_str()) {
            Some(openid) => openid.to_string(),
            None => format!("job:{}", job.id),
        };
        by_follower.entry(key).or_default().push(job);
    }
    // One follower's jobs go first, alone: if WeChat refuses everything, the worker pauses and
    // the rest of the round goes back to the queue untried.
    let mut followers = by_follower.into_values();
    if let Some(first) = followers.next() {
        for job in first {
            process(state, job, pause).await;
        }
    }
    stream::iter(followers)
        .for_each_concurrent(CONCURRENCY, |jobs| async move {
            for job in jobs {
                process(state, job, pause).await;
            }
        })
        .await;
}

async fn process(state: &AppState, job: Job, pause: &Mutex<Pause>) {
    let paused = pause_of(pause).remaining();
    if let Some(left) = paused {
        // Back in the queue for when the pause ends, without counting an attempt.
        let after = i64::try_from(left.as_secs())
            .unwrap_or(i64::MAX)
            .saturating_add(1);
        if let Err(e) = db::outbox::put_back(&state.pool, job.id, after).await {
            tracing::warn!(job = job.id, error = ?e, "could not put an outbox job back");
        }
        return;
    }
    let result = match JobKind::parse(&job.kind) {
        Some(JobKind::Message) => match serde_json::from_value::<MessageJob>(job.payload.clone()) {
            Ok(message) => send_message(state, &message).await,
            Err(e) => Err(Failure::Permanent(format!("unreadable payload: {e}"))),
        },
        Some(JobKind::Poster) => match serde_json::from_value::<PosterJob>(job.payload.clone()) {
            Ok(poster) => send_poster(state, &poster).await,
            Err(e) => Err(Failure::Permanent(format!("unreadable payload: {e}"))),
        },
        // A notice records its own result (sent, waiting, or due again).
        Some(JobKind::Notice) => match super::notices::send(state, &job).await {
            Ok(()) => {
                pause_of(pause).succeeded();
                return;
            }
            Err(failure) => Err(failure),
        },
        None => Err(Failure::Permanent(format!(
            "unknown job kind {:?}",
            job.kind
        ))),
    };
    match &result {
        Ok(()) => pause_of(pause).succeeded(),
        Err(Failure::WechatWide(_)) => pause_of(pause).failed(),
        Err(_) => {}
    }
    let outcome = match result {
        Ok(()) => db::outbox::mark_sent(&state.pool, job.id)
            .await
            .map(|_| "sent"),
        Err(Failure::Permanent(error)) => {
            tracing::warn!(job = job.id, %error, "outbox job failed for good");
            db::outbox::mark_failed(&state.pool, job.id, &error)
                .await
                .map(|_| "failed")
        }
        Err(Failure::Retry(error) | Failure::WechatWide(error)) if job.attempts >= MAX_ATTEMPTS => {
            tracing::warn!(job = job.id, %error, attempts = job.attempts, "outbox job gave up");
            db::outbox::mark_failed(&state.pool, job.id, &error)
                .await
                .map(|_| "failed")
        }
        Err(Failure::Retry(error) | Failure::WechatWide(error)) => {
            let delay = 2_i64.pow(job.attempts.clamp(0, 12) as u32).min(3600);
            db::outbox::retry_later(&state.pool, job.id, delay, &error)
                .await
                .map(|_| "retry")
        }
    };
    match outcome {
        Ok(result) => state
            .metrics
            .outbox
            .with_label_values(&[&job.kind, result])
            .inc(),
        // The lease will run out and the job will be tried again.
        Err(e) => tracing::warn!(job = job.id, error = ?e, "could not record an outbox result"),
    }
}

/// Why a job was not done: worth another try later, or never.
pub enum Failure {
    Retry(String),
    /// WeChat refuses everything for now: retry, and pause the worker.
    WechatWide(String),
    Permanent(String),
}

/// A text queued before notices were coalesced: sent while the follower's allowance lasts,
/// given up (not retried) when WeChat says it is spent.
async fn send_message(state: &AppState, m: &MessageJob) -> Result<(), Failure> {
    state
        .wechat
        .send_text(&m.openid, &m.text)
        .await
        .map_err(classify)
}

async fn send_poster(state: &AppState, job: &PosterJob) -> Result<(), Failure> {
    crate::poster::delivery::send(state, job)
        .await
        .map_err(|e| match e {
            ServiceError::Wechat(e) => classify(e),
            ServiceError::Other(e) => Failure::Retry(format!("{e:#}")),
        })?;
    // The poster went as a customer-service message: one less for this follower.
    if let Ok(openid) = OpenId::parse(&job.openid) {
        if let Err(e) = db::notices::spend_custom(&state.pool, &openid).await {
            tracing::warn!(error = ?e, "could not count a poster against the allowance");
        }
    }
    Ok(())
}

/// How a WeChat error counts for the job that met it.
pub(super) fn classify(e: WechatError) -> Failure {
    match &e {
        WechatError::Config { .. } => Failure::Permanent(e.to_string()),
        // Invalid openid, user blocked the account, invalid template or data, the
        // customer-service allowance spent or expired: retrying cannot help.
        WechatError::Api { errcode, .. }
            if [40003, 40037, 43004, 45015, 45047, 40008, 47003].contains(errcode) =>
        {
            Failure::Permanent(e.to_string())
        }
        WechatError::Api { errcode, .. } if WECHAT_WIDE.contains(errcode) => {
            Failure::WechatWide(e.to_string())
        }
        WechatError::Transport(_) | WechatError::Store(_) => Failure::WechatWide(e.to_string()),
        _ => Failure::Retry(e.to_string()),
    }
}

/// Puts a failed job back in the queue (the dashboard's retry button) and wakes this
/// instance's worker; `false` when there is no failed job with that id.
pub async fn retry_failed(services: &Services, id: i64) -> sqlx::Result<bool> {
    let queued = db::outbox::retry_failed(&services.pool, id).await?;
    if queued {
        services.outbox_wake.notify_one();
    }
    Ok(queued)
}
