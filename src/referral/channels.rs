//! Channel codes: named permanent codes an operator prints (a store, a poster). Follows through
//! them are attributed to the channel, never credited to a follower.

use anyhow::Context;

use super::codes::{ensure_image, issue_channel_code};
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
    let mut tx = state.pool.begin().await.map_err(ServiceError::from)?;
    let id = db::codes::create_channel(&mut tx, name)
        .await
        .map_err(ServiceError::from)?
        .ok_or_else(|| ChannelError::NameTaken(name.to_string()))?;
    let code = issue_channel_code(state, &mut tx, id).await?;
    tx.commit()
        .await
        .context("committing the channel")
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
