//! Sends what the outbox holds. A job is claimed with a lease, sent, then marked sent in one
//! statement. If the process dies after WeChat accepted a message and before that statement,
//! the lease runs out and the message is sent again: that one statement is the only window
//! for a duplicate, and nothing claimed is ever lost.

use std::time::Duration;

use serde::Deserialize;
use serde_json::json;
use tokio::sync::watch;

use crate::db;
use crate::db::outbox::Job;
use crate::poster::delivery::PosterJob;
use crate::referral::codes::IssueError;
use crate::state::AppState;
use crate::wechat::WechatError;

/// Attempts before a job is parked as failed (visible in the dashboard, retryable there).
const MAX_ATTEMPTS: i32 = 8;
const BATCH: i64 = 32;
/// WeChat: customer-service messages only within 48 h of the user's last interaction.
const OUTSIDE_48H: i64 = 45015;

#[derive(Debug, Deserialize)]
struct MessageJob {
    openid: String,
    text: String,
    template_id: Option<String>,
}

pub async fn run(state: AppState, mut shutdown: watch::Receiver<bool>) {
    let lease = i64::from(state.settings.outbox_lease_secs);
    loop {
        if *shutdown.borrow() {
            return;
        }
        let jobs = match db::outbox::claim(&state.pool, BATCH, lease).await {
            Ok(jobs) => jobs,
            Err(e) => {
                tracing::warn!(error = ?e, "outbox claim failed");
                Vec::new()
            }
        };
        let idle = jobs.is_empty();
        for job in jobs {
            process(&state, job).await;
        }
        if idle {
            tokio::select! {
                _ = state.outbox_wake.notified() => {}
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                _ = shutdown.changed() => return,
            }
        }
    }
}

async fn process(state: &AppState, job: Job) {
    let result = match job.kind.as_str() {
        crate::referral::push::JOB_MESSAGE => {
            match serde_json::from_value::<MessageJob>(job.payload.clone()) {
                Ok(message) => send_message(state, &message).await,
                Err(e) => Err(Failure::Permanent(format!("unreadable payload: {e}"))),
            }
        }
        crate::poster::delivery::JOB_POSTER => {
            match serde_json::from_value::<PosterJob>(job.payload.clone()) {
                Ok(poster) => send_poster(state, &poster).await,
                Err(e) => Err(Failure::Permanent(format!("unreadable payload: {e}"))),
            }
        }
        other => Err(Failure::Permanent(format!("unknown job kind {other:?}"))),
    };
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
        Err(Failure::Retry(error)) if job.attempts >= MAX_ATTEMPTS => {
            tracing::warn!(job = job.id, %error, attempts = job.attempts, "outbox job gave up");
            db::outbox::mark_failed(&state.pool, job.id, &error)
                .await
                .map(|_| "failed")
        }
        Err(Failure::Retry(error)) => {
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

enum Failure {
    Retry(String),
    Permanent(String),
}

async fn send_message(state: &AppState, m: &MessageJob) -> Result<(), Failure> {
    match state.wechat.send_text(&m.openid, &m.text).await {
        Ok(()) => Ok(()),
        Err(e) if e.errcode() == Some(OUTSIDE_48H) => match &m.template_id {
            Some(template_id) => {
                let data = json!({ "first": { "value": m.text } });
                state
                    .wechat
                    .send_template(&m.openid, template_id, data)
                    .await
                    .map_err(classify)
            }
            None => Err(Failure::Permanent(format!(
                "{e} (no template message configured)"
            ))),
        },
        Err(e) => Err(classify(e)),
    }
}

async fn send_poster(state: &AppState, job: &PosterJob) -> Result<(), Failure> {
    crate::poster::delivery::send(state, job)
        .await
        .map_err(|e| match e {
            IssueError::Wechat(e) => classify(e),
            IssueError::Other(e) => Failure::Retry(format!("{e:#}")),
        })
}

fn classify(e: WechatError) -> Failure {
    match &e {
        WechatError::Config { .. } => Failure::Permanent(e.to_string()),
        // Invalid openid, user blocked the account, invalid template: retrying cannot help.
        WechatError::Api { errcode, .. }
            if [40003, 40037, 43004, 45015, 40008].contains(errcode) =>
        {
            Failure::Permanent(e.to_string())
        }
        _ => Failure::Retry(e.to_string()),
    }
}
