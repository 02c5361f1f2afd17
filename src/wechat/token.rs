//! The access_token, shared by every instance. It lives in the shared store; it is refreshed
//! early (≥300 s before expiry) by one task in one process at a time: a `tokio` mutex makes the
//! refresh single-flight inside a process and a Redis lock (owner value, compare-and-delete
//! release) across processes, with a re-read of the store after each lock is taken.
//!
//! When the shared store fails (Redis down), the process keeps its own copy: the last token it
//! read or fetched serves while it is fresh, and a refresh is one fetch per process under the
//! same mutex, never one per request.

use std::sync::Mutex;
use std::time::Duration;

use chrono::Utc;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use super::error::WechatError;
use crate::shared_store::SharedStore;
use crate::telemetry::Metrics;

/// Refresh this long before the token expires.
const REFRESH_MARGIN_SECS: i64 = 300;
/// Longest a refresh may hold the cross-instance lock.
const LOCK_TTL: Duration = Duration::from_secs(10);
/// How long a caller waits for another instance's refresh before giving up.
const LOCK_WAIT: Duration = Duration::from_secs(15);
/// A token fetched to replace a rejected one and rejected in turn within this long is not
/// replaced again until it has passed: WeChat is refusing everything (a 40001 storm), and
/// refreshing per failed call would spend the token quota (and force_refresh's 20 a day).
const REJECTION_COOL_OFF: std::time::Duration = std::time::Duration::from_secs(60);

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct CachedToken {
    token: String,
    expires_at: i64,
    refresh_at: i64,
}

impl CachedToken {
    fn new(token: String, expires_in: i64, now: i64) -> CachedToken {
        // stable_token keeps answering with the same token until shortly before it expires, so a
        // short-lived token must not be refreshed on every call: wait at least half its life.
        let refresh_after = (expires_in - REFRESH_MARGIN_SECS).max(expires_in / 2);
        CachedToken {
            token,
            expires_at: now + expires_in,
            refresh_at: now + refresh_after,
        }
    }
    fn is_fresh(&self, now: i64) -> bool {
        now < self.refresh_at
    }
    fn is_valid(&self, now: i64) -> bool {
        now < self.expires_at - 5
    }
}

pub struct TokenManager {
    store: SharedStore,
    http: reqwest::Client,
    appid: String,
    secret: SecretString,
    api_base: String,
    use_stable_token: bool,
    metrics: Metrics,
    key: String,
    lock_key: String,
    refreshing: tokio::sync::Mutex<()>,
    /// This process's copy of the last token it read or fetched, for when the store fails.
    local: Mutex<Option<CachedToken>>,
    /// The last token WeChat rejected: if stable_token hands it back, force a new one.
    rejected: Mutex<Option<String>>,
    /// The token fetched to replace a rejected one, and when.
    replacement: Mutex<Option<(String, std::time::Instant)>>,
}

#[derive(Deserialize)]
struct TokenReply {
    access_token: Option<String>,
    expires_in: Option<i64>,
    errcode: Option<i64>,
    errmsg: Option<String>,
}

impl TokenManager {
    pub fn new(
        store: SharedStore,
        http: reqwest::Client,
        settings: &crate::config::WechatSettings,
        metrics: Metrics,
    ) -> TokenManager {
        TokenManager {
            store,
            http,
            appid: settings.appid.clone(),
            secret: settings.secret.clone(),
            api_base: settings.api_base.clone(),
            use_stable_token: settings.use_stable_token,
            metrics,
            key: format!("wechat:token:{}", settings.appid),
            lock_key: format!("wechat:token-lock:{}", settings.appid),
            refreshing: tokio::sync::Mutex::new(()),
            local: Mutex::new(None),
            rejected: Mutex::new(None),
            replacement: Mutex::new(None),
        }
    }

    /// A token good for the next call.
    pub async fn token(&self) -> Result<String, WechatError> {
        let now = Utc::now().timestamp();
        let cached = match self.read().await {
            Ok(cached) => cached,
            Err(e) => {
                tracing::debug!(error = %e, "token store unavailable; using this process's copy");
                lock(&self.local).clone()
            }
        };
        if let Some(t) = cached.as_ref().filter(|t| t.is_fresh(now)) {
            return Ok(t.token.clone());
        }
        let _single_flight = self.refreshing.lock().await;
        match self.refresh_under_lock().await {
            Err(WechatError::Store(e)) => {
                tracing::warn!(error = %e, "token store unavailable; refreshing for this process alone");
                self.refresh_locally().await
            }
            other => other,
        }
    }

    /// The refresh while the shared store is down: this process's copy if another task here
    /// has just fetched one, else one fetch (callers hold `refreshing`).
    async fn refresh_locally(&self) -> Result<String, WechatError> {
        let now = Utc::now().timestamp();
        if let Some(t) = lock(&self.local).as_ref().filter(|t| t.is_fresh(now)) {
            return Ok(t.token.clone());
        }
        let (token, expires_in) = self.fetch_replacing_rejected().await?;
        let entry = CachedToken::new(token.clone(), expires_in, Utc::now().timestamp());
        *lock(&self.local) = Some(entry.clone());
        // Share it if the store is back already; if not, the next refresh there will.
        if let Err(e) = self.write(&entry, expires_in).await {
            tracing::debug!(error = %e, "could not share a token fetched while the store was down");
        }
        Ok(token)
    }

    /// Called when WeChat rejected `failed` (40001/40014/42001). Drops it from the store only if it
    /// is still the current token, so a cluster never throws away a token another instance just
    /// fetched. Returns whether this call removed it.
    pub async fn invalidate(&self, failed: &str) -> Result<bool, WechatError> {
        let replaced_moments_ago = lock(&self.replacement)
            .as_ref()
            .is_some_and(|(token, at)| token == failed && at.elapsed() < REJECTION_COOL_OFF);
        if replaced_moments_ago {
            tracing::warn!(
                "WeChat rejects the token fetched to replace a rejected one; not refreshing again for {} s",
                REJECTION_COOL_OFF.as_secs()
            );
            return Ok(false);
        }
        *lock(&self.rejected) = Some(failed.to_string());
        {
            let mut local = lock(&self.local);
            if local.as_ref().is_some_and(|t| t.token == failed) {
                *local = None;
            }
        }
        let cached = match self.read().await {
            Ok(Some(cached)) => cached,
            Ok(None) => return Ok(false),
            // This process's copy is gone; the store's will be replaced when it is back.
            Err(_) => return Ok(true),
        };
        if cached.token != failed {
            return Ok(false);
        }
        let raw = serde_json::to_string(&cached).map_err(|e| WechatError::Store(e.into()))?;
        match self.store.compare_and_delete(&self.key, &raw).await {
            Ok(deleted) => Ok(deleted),
            Err(e) => {
                tracing::warn!(error = %e, "could not drop a rejected token from the store");
                Ok(true)
            }
        }
    }

    /// How old the current token is and when it expires (for the dashboard).
    pub async fn status(&self) -> Result<Option<(i64, i64)>, WechatError> {
        Ok(self.read().await?.map(|t| (t.refresh_at, t.expires_at)))
    }

    async fn read(&self) -> Result<Option<CachedToken>, WechatError> {
        let raw = self
            .store
            .get(&self.key)
            .await
            .map_err(WechatError::Store)?;
        // An unreadable entry is treated as absent: it will be overwritten by the next refresh.
        let cached: Option<CachedToken> = raw.and_then(|r| serde_json::from_str(&r).ok());
        if let Some(t) = &cached {
            *lock(&self.local) = Some(t.clone());
        }
        Ok(cached)
    }

    async fn write(&self, entry: &CachedToken, expires_in: i64) -> Result<(), WechatError> {
        let raw = serde_json::to_string(entry).map_err(|e| WechatError::Store(e.into()))?;
        let ttl = Duration::from_secs(expires_in.max(1) as u64);
        self.store
            .set(&self.key, &raw, ttl, false)
            .await
            .map_err(WechatError::Store)?;
        Ok(())
    }

    async fn refresh_under_lock(&self) -> Result<String, WechatError> {
        let owner = uuid::Uuid::new_v4().to_string();
        let deadline = tokio::time::Instant::now() + LOCK_WAIT;
        loop {
            // Someone may have refreshed while we waited for a lock.
            let cached = self.read().await?;
            let now = Utc::now().timestamp();
            if let Some(t) = cached.as_ref().filter(|t| t.is_fresh(now)) {
                return Ok(t.token.clone());
            }
            let locked = self
                .store
                .set(&self.lock_key, &owner, LOCK_TTL, true)
                .await
                .map_err(WechatError::Store)?;
            if locked {
                let result = self.refresh_holding_lock().await;
                // Release only our own lock: it may have expired and been taken by another.
                let released = self.store.compare_and_delete(&self.lock_key, &owner).await;
                if let Err(e) = released {
                    tracing::warn!(error = ?e, "could not release the token lock; it will expire");
                }
                return result;
            }
            // Another instance is refreshing. A token that is stale but still valid serves meanwhile.
            if let Some(t) = cached.filter(|t| t.is_valid(now)) {
                return Ok(t.token);
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(WechatError::BadResponse(
                    "timed out waiting for another instance's token refresh".into(),
                ));
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    async fn refresh_holding_lock(&self) -> Result<String, WechatError> {
        let cached = self.read().await?;
        let now = Utc::now().timestamp();
        if let Some(t) = cached.as_ref().filter(|t| t.is_fresh(now)) {
            return Ok(t.token.clone());
        }
        let (token, expires_in) = self.fetch_replacing_rejected().await?;
        let entry = CachedToken::new(token.clone(), expires_in, Utc::now().timestamp());
        *lock(&self.local) = Some(entry.clone());
        self.write(&entry, expires_in).await?;
        tracing::info!(
            expires_in,
            stable = self.use_stable_token,
            "access_token refreshed"
        );
        Ok(token)
    }

    /// A token from WeChat; if stable_token hands back the one WeChat just refused, a forced one.
    async fn fetch_replacing_rejected(&self) -> Result<(String, i64), WechatError> {
        let rejected = lock(&self.rejected).take();
        let mut fresh = self.fetch(false).await?;
        if self.use_stable_token && Some(&fresh.0) == rejected.as_ref() {
            fresh = self.fetch(true).await?;
        }
        if rejected.is_some() {
            *lock(&self.replacement) = Some((fresh.0.clone(), std::time::Instant::now()));
        }
        Ok(fresh)
    }

    async fn fetch(&self, force_refresh: bool) -> Result<(String, i64), WechatError> {
        let (api, request) = if self.use_stable_token {
            let body = serde_json::json!({
                "grant_type": "client_credential",
                "appid": self.appid,
                "secret": self.secret.expose_secret(),
                "force_refresh": force_refresh,
            });
            (
                "stable_token",
                self.http
                    .post(format!("{}/cgi-bin/stable_token", self.api_base))
                    .json(&body),
            )
        } else {
            let query = [
                ("grant_type", "client_credential"),
                ("appid", self.appid.as_str()),
                ("secret", self.secret.expose_secret()),
            ];
            (
                "token",
                self.http
                    .get(format!("{}/cgi-bin/token", self.api_base))
                    .query(&query),
            )
        };
        let mut backoff = Duration::from_millis(200);
        for attempt in 0..4 {
            let reply: TokenReply = request
                .try_clone()
                .ok_or_else(|| WechatError::BadResponse("token request cannot be retried".into()))?
                .send()
                .await?
                .json()
                .await?;
            let errcode = reply.errcode.unwrap_or(0);
            self.metrics.wechat_call(api, errcode);
            match (errcode, reply.access_token, reply.expires_in) {
                (0, Some(token), Some(expires_in)) if !token.is_empty() && expires_in > 0 => {
                    self.metrics.token_refreshes.inc();
                    return Ok((token, expires_in));
                }
                (-1, _, _) if attempt < 3 => {
                    // System busy: WeChat asks clients to back off and retry.
                    tokio::time::sleep(backoff).await;
                    backoff *= 2;
                }
                (0, ..) => {
                    return Err(WechatError::BadResponse(
                        "token reply without a token".into(),
                    ))
                }
                (code, ..) => {
                    let err = WechatError::from_code(code, reply.errmsg.unwrap_or_default());
                    if matches!(err, WechatError::Config { .. }) {
                        tracing::error!(error = %err, "WeChat refused the account's credentials");
                    }
                    return Err(err);
                }
            }
        }
        Err(WechatError::Api {
            errcode: -1,
            errmsg: "system busy".into(),
        })
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_refresh_early_but_not_in_a_loop() {
        let t = CachedToken::new("t".into(), 7200, 1000);
        assert!(t.is_fresh(1000 + 6899));
        assert!(!t.is_fresh(1000 + 6900));
        assert!(t.is_valid(1000 + 7000));
        // A token stable_token hands out near its end is kept for half its remaining life.
        let short = CachedToken::new("t".into(), 200, 1000);
        assert!(short.is_fresh(1099));
        assert!(!short.is_fresh(1100));
    }
}
