//! JS-SDK: the `jsapi_ticket` an H5 page's `wx.config` is signed with, shared by every instance
//! like the access_token — kept in the shared store, fetched by one instance at a time under a
//! store lock (single-flight inside a process too), refreshed early — and the signature itself.
//! When the store fails, the process keeps its own copy and fetches at most once for itself.

use std::sync::Mutex;
use std::time::Duration;

use chrono::Utc;
use serde::{Deserialize, Serialize};
use sha1::{Digest, Sha1};

use super::error::WechatError;
use crate::shared_store::SharedStore;

/// Refresh this long before the ticket expires.
const REFRESH_MARGIN_SECS: i64 = 300;
const LOCK_TTL: Duration = Duration::from_secs(10);
/// How long a caller waits for another instance's fetch.
const LOCK_WAIT: Duration = Duration::from_secs(10);

/// `wx.config`'s signature: sha1 of `jsapi_ticket=…&noncestr=…&timestamp=…&url=…`, the URL
/// without its `#` fragment.
pub fn signature(ticket: &str, nonce: &str, timestamp: i64, url: &str) -> String {
    let url = url.split('#').next().unwrap_or(url);
    let plain = format!("jsapi_ticket={ticket}&noncestr={nonce}&timestamp={timestamp}&url={url}");
    hex::encode(Sha1::digest(plain.as_bytes()))
}

/// What a page needs for `wx.config`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsConfig {
    pub app_id: String,
    pub timestamp: i64,
    pub nonce: String,
    pub signature: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Cached {
    ticket: String,
    expires_at: i64,
    refresh_at: i64,
}

impl Cached {
    fn fresh(&self, now: i64) -> bool {
        now < self.refresh_at
    }
}

pub struct TicketCache {
    store: SharedStore,
    key: String,
    lock_key: String,
    fetching: tokio::sync::Mutex<()>,
    local: Mutex<Option<Cached>>,
}

impl TicketCache {
    pub fn new(store: SharedStore, appid: &str) -> TicketCache {
        TicketCache {
            store,
            key: format!("wechat:jsapi-ticket:{appid}"),
            lock_key: format!("wechat:jsapi-ticket-lock:{appid}"),
            fetching: tokio::sync::Mutex::new(()),
            local: Mutex::new(None),
        }
    }

    /// A ticket good for a signature now; `fetch` asks WeChat for one: (ticket, expires_in).
    pub async fn ticket<F, Fut>(&self, fetch: F) -> Result<String, WechatError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<(String, i64), WechatError>>,
    {
        if let Some(ticket) = self.fresh().await {
            return Ok(ticket);
        }
        let _single_flight = self.fetching.lock().await;
        let owner = uuid::Uuid::new_v4().to_string();
        let deadline = tokio::time::Instant::now() + LOCK_WAIT;
        loop {
            if let Some(ticket) = self.fresh().await {
                return Ok(ticket);
            }
            let locked = match self.store.set(&self.lock_key, &owner, LOCK_TTL, true).await {
                Ok(locked) => locked,
                // No shared store: this process fetches for itself.
                Err(_) => return self.fetch_and_keep(&fetch).await,
            };
            if locked {
                let result = self.fetch_holding_lock(&fetch).await;
                let _ = self.store.compare_and_delete(&self.lock_key, &owner).await;
                return result;
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(WechatError::BadResponse(
                    "timed out waiting for another instance's jsapi_ticket".into(),
                ));
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Fetches under the store lock, unless another instance stored a ticket between our read
    /// and our lock (it fetched and released the lock in that moment).
    async fn fetch_holding_lock<F, Fut>(&self, fetch: &F) -> Result<String, WechatError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<(String, i64), WechatError>>,
    {
        if let Some(ticket) = self.fresh().await {
            return Ok(ticket);
        }
        self.fetch_and_keep(fetch).await
    }

    /// The stored ticket, if it is not due for a refresh yet.
    async fn fresh(&self) -> Option<String> {
        let now = Utc::now().timestamp();
        self.read().await.filter(|t| t.fresh(now)).map(|t| t.ticket)
    }

    async fn fetch_and_keep<F, Fut>(&self, fetch: &F) -> Result<String, WechatError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<(String, i64), WechatError>>,
    {
        let (ticket, expires_in) = fetch().await?;
        let now = Utc::now().timestamp();
        let entry = Cached {
            ticket: ticket.clone(),
            expires_at: now + expires_in,
            refresh_at: now + (expires_in - REFRESH_MARGIN_SECS).max(expires_in / 2),
        };
        *self.local.lock().unwrap_or_else(|p| p.into_inner()) = Some(entry.clone());
        if let Ok(raw) = serde_json::to_string(&entry) {
            let ttl = Duration::from_secs(expires_in.max(1) as u64);
            if let Err(e) = self.store.set(&self.key, &raw, ttl, false).await {
                tracing::warn!(error = %e, "could not share the jsapi_ticket");
            }
        }
        Ok(ticket)
    }

    /// The shared copy, or this process's when the store cannot be read.
    async fn read(&self) -> Option<Cached> {
        match self.store.get(&self.key).await {
            Ok(raw) => raw.and_then(|r| serde_json::from_str(&r).ok()),
            Err(_) => self
                .local
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone()
                .filter(|t| Utc::now().timestamp() < t.expires_at),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Instance B read no ticket, then A fetched, stored it and released the lock, then B took
    /// the lock: B signs with A's ticket instead of fetching a second one.
    #[tokio::test]
    async fn a_ticket_stored_just_before_taking_the_lock_is_used_not_fetched_again() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let store = SharedStore::memory();
        let a = TicketCache::new(store.clone(), "wx1");
        let b = TicketCache::new(store, "wx1");
        let fetched = AtomicUsize::new(0);
        let fetch = || {
            let n = fetched.fetch_add(1, Ordering::SeqCst);
            async move { Ok((format!("ticket-{n}"), 7200)) }
        };
        assert_eq!(a.ticket(fetch).await.unwrap(), "ticket-0");
        assert_eq!(b.fetch_holding_lock(&fetch).await.unwrap(), "ticket-0");
        assert_eq!(fetched.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn wechats_documented_signature_example() {
        assert_eq!(
            signature(
                "sM4AOVdWfPE4DxkXGEs8VMCPGGVi4C3VM0P37wVUCFvkVAy_90u5h9nbSlYy3-Sl-HhTdfl2fzFy1AOcHKP7qg",
                "Wm3WZYTPz0wzccnW",
                1414587457,
                "http://mp.weixin.qq.com?params=value",
            ),
            "0f9de62fce790f9a083d5c99e95740ceb90c27ed"
        );
        // The fragment is not signed.
        assert_eq!(
            signature("t", "n", 1, "https://x/invite#top"),
            signature("t", "n", 1, "https://x/invite")
        );
    }
}
