//! What every handler and worker shares: the pool, the shared store, the WeChat client,
//! storage, metrics and the settings as resolved at start.

use std::sync::Arc;

use sqlx::PgPool;
use tokio::sync::Notify;

use crate::config::Settings;
use crate::push::PushQueue;
use crate::shared_store::SharedStore;
use crate::storage::Storage;
use crate::telemetry::Metrics;
use crate::wechat::crypto::MessageCrypto;
use crate::wechat::WechatClient;

#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
    pub store: SharedStore,
    pub wechat: WechatClient,
    pub storage: Storage,
    pub metrics: Metrics,
    pub settings: Arc<Settings>,
    /// The external base URL, resolved against the bound address when not configured.
    pub public_url: Arc<str>,
    /// Safe-mode message crypto, when `WECHAT_ENCODING_AES_KEY` is set.
    pub crypto: Option<MessageCrypto>,
    /// Wakes this process's outbox worker as soon as a decision enqueues work.
    pub outbox_wake: Arc<Notify>,
    /// Group commit of pushes (`push::batcher`).
    pub pushes: PushQueue,
}

impl AppState {
    pub fn media_url(&self, key: &str) -> String {
        format!("{}/media/{key}", self.public_url)
    }
}
