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
