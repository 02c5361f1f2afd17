//! Channel codes: named permanent codes an operator prints (a store, a poster). Follows through
//! them are attributed to the channel, never credited to a follower.

use anyhow::Context;

use super::codes::{ensure_image, issue_channel_code, save_channel_code};
use crate::db;
use crate::db::codes::CodeRow;
use crate::services::ServiceError;
use crate::services::Services;

#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    #[error("a channel named {0:?} already exists")]
    NameTaken(String),
    #[error("a channel name must be 1 to 64 characters")]
    BadName,
    #[error(transparent)]
    Issue(#[from] ServiceError),
}

pub async fn create(state: &Services, name: &str) -> Result<CodeRow, ChannelError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 64 {
        return Err(ChannelError::BadName);
    }
    // The channel is committed first and WeChat asked holding no connection; a refused code
    // takes the channel back out, so the name stays free.
    let id = db::codes::create_channel(&state.pool, name)
        .await
        .map_err(ServiceError::from)?
        .ok_or_else(|| ChannelError::NameTaken(name.to_string()))?;
    let code = match issue_channel_code(state, id).await {
        Ok(code) => code,
        Err(e) => {
            if let Err(undo) = db::codes::delete_codeless_channel(&state.pool, id).await {
                tracing::warn!(error = ?undo, "could not remove a channel WeChat gave no code");
            }
            return Err(e.into());
        }
    };
    let mut tx = state.pool.begin().await.map_err(ServiceError::from)?;
    let code = save_channel_code(&mut tx, id, &code).await?;
    tx.commit()
        .await
        .context("committing the channel's code")
        .map_err(ServiceError::from)?;
    Ok(ensure_image(state, code).await?)
}

/// The channel behind the invite page's "follow us first" QR code, so follows from that page
/// are counted like any channel's.
pub const FOLLOW_FIRST_CHANNEL: &str = "邀请页：先关注公众号";

/// The follow-first page's code: the channel is created the first time a page needs it (two
/// pages at once: the one that loses the name takes the other's channel).
pub async fn follow_first(state: &Services) -> Result<CodeRow, ChannelError> {
    if let Some(code) = follow_first_code(state).await? {
        return Ok(ensure_image(state, code).await?);
    }
    match create(state, FOLLOW_FIRST_CHANNEL).await {
        Err(ChannelError::NameTaken(_)) => match follow_first_code(state).await? {
            Some(code) => Ok(ensure_image(state, code).await?),
            None => Err(ChannelError::NameTaken(FOLLOW_FIRST_CHANNEL.to_string())),
        },
        other => other,
    }
}

async fn follow_first_code(state: &Services) -> Result<Option<CodeRow>, ServiceError> {
    let Some(id) = db::codes::channel_by_name(&state.pool, FOLLOW_FIRST_CHANNEL).await? else {
        return Ok(None);
    };
    Ok(db::codes::by_channel(&state.pool, id).await?)
}
