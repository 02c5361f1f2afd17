//! What the referral rules, posters and background work use to reach the world outside the
//! process: the database, the shared store, WeChat, object storage, the settings, and the
//! metrics they report to. The HTTP side's own parts (message crypto, the push queue) are in
//! `AppState`, which derefs to this.

use std::sync::Arc;

use sqlx::PgPool;
use tokio::sync::Notify;

use crate::config::Settings;
use crate::shared_store::SharedStore;
use crate::storage::Storage;
use crate::telemetry::Metrics;
use crate::wechat::{WechatClient, WechatError};

#[derive(Clone)]
pub struct Services {
    pub pool: PgPool,
    pub store: SharedStore,
    pub wechat: WechatClient,
    pub storage: Storage,
    pub settings: Arc<Settings>,
    /// The external base URL, resolved against the bound address when not configured.
    pub public_url: Arc<str>,
    /// Wakes this process's outbox worker as soon as a decision enqueues work.
    pub outbox_wake: Arc<Notify>,
    pub metrics: Metrics,
}

impl Services {
    pub fn media_url(&self, key: &str) -> String {
        format!("{}/media/{key}", self.public_url)
    }
}

/// Why work that goes through the services failed: WeChat's answer (which callers may show or
/// act on: a quota, an invalid openid), or anything else (logged, never shown).
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Wechat(#[from] WechatError),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

impl From<sqlx::Error> for ServiceError {
    fn from(e: sqlx::Error) -> Self {
        ServiceError::Other(e.into())
    }
}
