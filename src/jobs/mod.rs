//! Background work: the outbox worker (messages and posters to followers), the webhook
//! delivery worker, the grant of delayed rewards once due, the renewal of temporary invite
//! codes, forgetting the account's old follow counts, analyzing tables that grew fast, and the
//! flush of WeChat call counters to the shared tally (`wechat_calls`, run by every instance).
//! Each stops when the shutdown signal flips, after finishing the job in hand.

pub mod delayed;
pub mod notices;
pub mod outbox;
pub mod webhooks;
pub mod wechat_calls;

use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::state::AppState;

pub fn spawn(state: AppState, shutdown: watch::Receiver<bool>) -> Vec<JoinHandle<()>> {
    vec![
        tokio::spawn(outbox::run(state.clone(), shutdown.clone())),
        tokio::spawn(webhooks::run(state.clone(), shutdown.clone())),
        tokio::spawn(delayed::run(state.clone(), shutdown.clone())),
        tokio::spawn(forget_old_follows(state.clone(), shutdown.clone())),
        tokio::spawn(analyze_grown(state.clone(), shutdown.clone())),
        tokio::spawn(renew_codes(state, shutdown)),
    ]
}

/// The account's follow counts are read for the last minute only (the scene-burst signal);
/// those older than a day go, every ten minutes, on every instance (deleting twice is harmless).
async fn forget_old_follows(state: AppState, mut shutdown: watch::Receiver<bool>) {
    loop {
        let day_ago = chrono::Utc::now().timestamp() - 86_400;
        if let Err(e) = crate::db::risk::forget_follows(&state.pool, day_ago).await {
            tracing::warn!(error = ?e, "forgetting old follow counts failed");
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(600)) => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// Keeps the planner's statistics up with tables that grow fast (the push writers keep their
/// plans until a table they read is analyzed): every five seconds, on every instance.
async fn analyze_grown(state: AppState, mut shutdown: watch::Receiver<bool>) {
    loop {
        match crate::db::analyze_grown(&state.pool).await {
            Ok(tables) if tables.is_empty() => {}
            Ok(tables) => tracing::debug!(?tables, "analyzed grown tables"),
            Err(e) => tracing::warn!(error = ?e, "analyzing grown tables failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(5)) => {}
            _ = shutdown.changed() => return,
        }
    }
}

async fn renew_codes(state: AppState, mut shutdown: watch::Receiver<bool>) {
    loop {
        match crate::referral::codes::renew_expiring(&state).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(renewed = n, "renewed temporary invite codes"),
            Err(e) => tracing::warn!(error = ?e, "invite code renewal failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(600)) => {}
            _ = shutdown.changed() => return,
        }
    }
}
