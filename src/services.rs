//! What the referral rules, posters and background work use to reach the world outside the
//! process: the database, the shared store, WeChat, object storage, the settings, and the
//! metrics they report to. The HTTP side's own parts (message crypto, the push queue) are in
//! `AppState`, which derefs to this.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use sqlx::PgPool;
use tokio::sync::{Notify, OwnedMutexGuard};

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
    /// One caller at a time per piece of WeChat work in this process (see `Turns`).
    pub turns: Turns,
}

/// Per-key turns inside this process: of concurrent callers wanting the same WeChat work done
/// (a follower's first code, a poster's upload), one goes ahead and the others wait here,
/// holding no database connection, then find its result. Across instances a database lease
/// (`db::leases`) does the same job.
#[derive(Clone, Default)]
pub struct Turns(Arc<Mutex<HashMap<String, Weak<tokio::sync::Mutex<()>>>>>);

impl Turns {
    /// Waits until no other caller in this process holds `key`'s turn, and takes it.
    pub async fn take(&self, key: &str) -> OwnedMutexGuard<()> {
        let slot = {
            // A panic while holding this lock cannot leave the map inconsistent.
            let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
            // Keys nobody waits on any more are dropped as they go.
            map.retain(|_, slot| slot.strong_count() > 0);
            match map.get(key).and_then(Weak::upgrade) {
                Some(slot) => slot,
                None => {
                    let slot = Arc::new(tokio::sync::Mutex::new(()));
                    map.insert(key.to_string(), Arc::downgrade(&slot));
                    slot
                }
            }
        };
        slot.lock_owned().await
    }
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
