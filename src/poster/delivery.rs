//! Sending a follower their poster through WeChat: the keyword / menu reply. The poster is
//! uploaded as temporary media once and its media_id reused while WeChat still keeps it. The
//! passive reply has to be fast (WeChat waits 5 s), so it waits a bounded time; past that the
//! follower gets a "coming" text and the image follows as a customer-service message from the
//! outbox job that the push's own transaction queued.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use serde::{Deserialize, Serialize};

use super::personal;
use crate::config::Settings;
use crate::db;
use crate::db::leases::Lease;
use crate::domain::OpenId;
use crate::services::ServiceError;
use crate::services::Services;
use crate::wechat::message::PushKind;

pub const GENERATING_TEXT: &str = "海报生成中，请稍候";
/// How long the callback waits for the poster before answering with text instead.
const REPLY_BUDGET: Duration = Duration::from_secs(3);
/// Longer than an upload can take with its token fetch and retries.
const UPLOAD_LEASE_TTL: Duration = Duration::from_secs(60);
const UPLOAD_LEASE_WAIT: Duration = Duration::from_secs(30);
const UPLOAD_LEASE_POLL: Duration = Duration::from_millis(100);
/// When the fallback job becomes due if nobody brings it forward: after the callback has
/// answered (or died trying).
pub const FALLBACK_DELAY_SECS: i64 = 8;
/// WeChat keeps temporary media 3 days; stop reusing a media_id a little before that so a
/// reply never carries one that expires in flight.
fn media_reuse() -> chrono::Duration {
    chrono::Duration::days(3) - chrono::Duration::minutes(30)
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PosterJob {
    pub openid: String,
}

/// Is this push a request for the sender's poster (the keyword, or the menu button)?
pub fn asks_for_poster(settings: &Settings, kind: &PushKind<'_>) -> bool {
    match kind {
        PushKind::Text { content } => {
            !settings.poster_keyword.is_empty() && content.trim() == settings.poster_keyword
        }
        PushKind::Click { key } => *key == settings.poster_menu_key,
        _ => false,
    }
}

/// A media_id for the follower's current poster: reused while fresh, else uploaded (once, even
/// when asked for concurrently on several instances). The upload holds no database connection:
/// callers take turns in a process and a lease across instances.
pub async fn media_id(state: &Services, openid: &OpenId) -> Result<String, ServiceError> {
    let poster = personal::for_follower(state, openid).await?;
    let since = Utc::now() - media_reuse();
    if let Some(id) = db::media::uploaded_since(&state.pool, &poster.key, since).await? {
        return Ok(id);
    }
    let name = format!("wechat_media:{}", poster.key);
    let _turn = state.turns.take(&name).await;
    let deadline = Instant::now() + UPLOAD_LEASE_WAIT;
    loop {
        if let Some(id) = db::media::uploaded_since(&state.pool, &poster.key, since).await? {
            return Ok(id);
        }
        if let Some(lease) = Lease::take(&state.pool, &name, UPLOAD_LEASE_TTL).await? {
            let uploaded_at = Utc::now();
            let uploaded = state
                .wechat
                .upload_image("poster.jpg", "image/jpeg", poster.jpeg.clone())
                .await;
            if let Ok(id) = &uploaded {
                db::media::save(&state.pool, &poster.key, id, uploaded_at).await?;
            }
            if let Err(e) = lease.end(&state.pool).await {
                tracing::warn!(error = ?e, "could not end a poster upload lease; it will expire");
            }
            return Ok(uploaded?);
        }
        if Instant::now() >= deadline {
            return Err(anyhow::anyhow!(
                "another instance has been uploading this poster for too long"
            )
            .into());
        }
        tokio::time::sleep(UPLOAD_LEASE_POLL).await;
    }
}

/// What the callback answers to a poster request.
pub enum PosterReply {
    Image(String),
    Text(&'static str),
}

/// Waits at most `REPLY_BUDGET` for the media_id. In time: the fallback job is cancelled and
/// the image is the reply. Too late or failed: the reply is a text and the job sends the image.
pub async fn reply_in_time(state: &Services, openid: &OpenId, fallback_job: i64) -> PosterReply {
    let gave_up = Arc::new(AtomicBool::new(false));
    let task = tokio::spawn({
        let (state, openid, gave_up) = (state.clone(), openid.clone(), gave_up.clone());
        async move {
            let result = media_id(&state, &openid).await;
            // Finished after the callback answered: the job finds everything ready, so let it
            // run now rather than at its scheduled time.
            if result.is_ok() && gave_up.load(Ordering::SeqCst) {
                bring_forward(&state, fallback_job).await;
            }
            result
        }
    });
    match tokio::time::timeout(REPLY_BUDGET, task).await {
        Ok(Ok(Ok(media_id))) => {
            // If this fails the follower gets the poster twice, which beats not at all.
            if let Err(e) = db::outbox::mark_sent(&state.pool, fallback_job).await {
                tracing::warn!(error = ?e, "could not cancel the poster fallback job");
            }
            PosterReply::Image(media_id)
        }
        Ok(Ok(Err(e))) => {
            tracing::warn!(error = ?e, "poster not ready for the passive reply; the outbox will send it");
            bring_forward(state, fallback_job).await;
            PosterReply::Text(GENERATING_TEXT)
        }
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "the poster task failed; the outbox will send it");
            bring_forward(state, fallback_job).await;
            PosterReply::Text(GENERATING_TEXT)
        }
        Err(_) => {
            gave_up.store(true, Ordering::SeqCst);
            tracing::info!("poster slower than the reply budget; it follows as a message");
            PosterReply::Text(GENERATING_TEXT)
        }
    }
}

async fn bring_forward(state: &Services, job: i64) {
    match db::outbox::run_now(&state.pool, job).await {
        Ok(()) => state.outbox_wake.notify_one(),
        Err(e) => tracing::warn!(error = ?e, "could not bring the poster job forward"),
    }
}

/// The outbox job: the poster as a customer-service image message.
pub async fn send(state: &Services, job: &PosterJob) -> Result<(), ServiceError> {
    let openid = OpenId::parse(&job.openid).map_err(|e| anyhow::anyhow!(e.0))?;
    let media_id = media_id(state, &openid).await?;
    state.wechat.send_image(openid.as_str(), &media_id).await?;
    Ok(())
}
