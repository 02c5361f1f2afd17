//! The small shared key-value store behind the access_token and its refresh lock, the login
//! failure counters and the avatar mappings of posters: Redis when `REDIS_URL` is set,
//! otherwise a map inside this process
//! (which is only correct with a single instance — startup warns about it).
//!
//! Redis is a cache here, never the only record of anything that matters, so every call is
//! short: it fails within `CALL_TIMEOUT`, and after a failure calls fail at once for
//! `COOL_OFF` instead of queueing behind a dead connection. Callers fall back (the database
//! decides, the access_token is kept in the process). When Redis is back, the first call after
//! the cool-off reconnects.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::Context;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

/// Longest any Redis call may take, reconnecting included.
const CALL_TIMEOUT: Duration = Duration::from_millis(500);
/// After a failed call, how long calls fail at once without trying Redis.
const COOL_OFF: Duration = Duration::from_secs(1);

#[derive(Clone)]
pub enum SharedStore {
    Redis {
        conn: ConnectionManager,
        prefix: String,
        breaker: Arc<Breaker>,
    },
    Memory(Arc<Mutex<HashMap<String, (String, Instant)>>>),
}

/// Remembers a recent failure so that calls made during an outage fail fast.
#[derive(Default)]
pub struct Breaker {
    /// Milliseconds since `epoch()` before which calls fail at once; 0 = closed.
    open_until_ms: AtomicU64,
}

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn now_ms() -> u64 {
    epoch().elapsed().as_millis() as u64
}

impl Breaker {
    /// Runs one Redis call within `CALL_TIMEOUT`, unless a recent failure says not to try.
    async fn call<T>(
        &self,
        what: &'static str,
        call: impl std::future::Future<Output = redis::RedisResult<T>>,
    ) -> anyhow::Result<T> {
        if now_ms() < self.open_until_ms.load(Ordering::Relaxed) {
            anyhow::bail!("{what}: Redis failed moments ago; not trying again yet");
        }
        let result = match tokio::time::timeout(CALL_TIMEOUT, call).await {
            Ok(Ok(value)) => {
                if self.open_until_ms.load(Ordering::Relaxed) != 0 {
                    self.succeeded();
                }
                return Ok(value);
            }
            Ok(Err(e)) => Err(anyhow::Error::new(e).context(what)),
            Err(_) => Err(anyhow::anyhow!(
                "{what}: Redis did not answer within {CALL_TIMEOUT:?}"
            )),
        };
        let until = now_ms() + COOL_OFF.as_millis() as u64;
        if self.open_until_ms.swap(until, Ordering::Relaxed) == 0 {
            tracing::warn!("Redis is failing; falling back until it answers again");
        }
        result
    }

    fn succeeded(&self) {
        if self.open_until_ms.swap(0, Ordering::Relaxed) != 0 {
            tracing::info!("Redis answers again");
        }
    }
}

/// Deletes KEYS[1] only while it still holds ARGV[1]: releasing a lock or dropping a token
/// that someone else has already replaced must be a no-op.
const COMPARE_AND_DELETE: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"#;

/// INCR that sets the expiry with the first increment, atomically, so a counter can never be
/// left without one.
const INCR_WITH_EXPIRY: &str = r#"
local n = redis.call('INCR', KEYS[1])
if n == 1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
return n
"#;

/// DECR of a counter that exists and is above zero; a missing key stays missing (DECR alone
/// would create it without an expiry).
const DECR_IF_POSITIVE: &str = r#"
local n = tonumber(redis.call('GET', KEYS[1]) or '0')
if n > 0 then
  return redis.call('DECR', KEYS[1])
end
return 0
"#;

impl SharedStore {
    pub async fn redis(url: &str, prefix: &str) -> anyhow::Result<SharedStore> {
        let client = redis::Client::open(url).context("parsing REDIS_URL")?;
        // The crate's default reconnection retries six times with delays growing to a minute,
        // and every call waits for it: one quick attempt instead, and the next call tries again.
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(CALL_TIMEOUT)
            .set_response_timeout(CALL_TIMEOUT)
            .set_number_of_retries(0);
        let conn = ConnectionManager::new_with_config(client, config)
            .await
            .context("connecting to Redis")?;
        Ok(SharedStore::Redis {
            conn,
            prefix: prefix.to_string(),
            breaker: Arc::default(),
        })
    }

    pub fn memory() -> SharedStore {
        SharedStore::Memory(Arc::new(Mutex::new(HashMap::new())))
    }

    pub async fn get(&self, key: &str) -> anyhow::Result<Option<String>> {
        match self {
            SharedStore::Redis {
                conn,
                prefix,
                breaker,
            } => {
                let mut conn = conn.clone();
                let cmd = redis::cmd("GET").arg(format!("{prefix}{key}")).clone();
                let value: Option<String> = breaker
                    .call("Redis GET", cmd.query_async(&mut conn))
                    .await?;
                Ok(value)
            }
            SharedStore::Memory(map) => {
                let mut map = lock(map);
                Ok(live(&mut map, key).map(|(value, _)| value.clone()))
            }
        }
    }

    /// SET with an expiry. With `only_if_absent`, returns whether this call set the key.
    pub async fn set(
        &self,
        key: &str,
        value: &str,
        ttl: Duration,
        only_if_absent: bool,
    ) -> anyhow::Result<bool> {
        let ttl_ms = ttl.as_millis().max(1) as u64;
        match self {
            SharedStore::Redis {
                conn,
                prefix,
                breaker,
            } => {
                let mut conn = conn.clone();
                let mut cmd = redis::cmd("SET");
                cmd.arg(format!("{prefix}{key}"))
                    .arg(value)
                    .arg("PX")
                    .arg(ttl_ms);
                if only_if_absent {
                    cmd.arg("NX");
                }
                let reply: Option<String> = breaker
                    .call("Redis SET", cmd.query_async(&mut conn))
                    .await?;
                Ok(reply.is_some())
            }
            SharedStore::Memory(map) => {
                let mut map = lock(map);
                if only_if_absent && live(&mut map, key).is_some() {
                    return Ok(false);
                }
                map.insert(key.to_string(), (value.to_string(), Instant::now() + ttl));
                Ok(true)
            }
        }
    }

    /// Deletes `key` only if it still holds `expected`; returns whether it did.
    pub async fn compare_and_delete(&self, key: &str, expected: &str) -> anyhow::Result<bool> {
        match self {
            SharedStore::Redis {
                conn,
                prefix,
                breaker,
            } => {
                let mut conn = conn.clone();
                let script = redis::Script::new(COMPARE_AND_DELETE);
                let mut invocation = script.key(format!("{prefix}{key}"));
                invocation.arg(expected);
                let deleted: i64 = breaker
                    .call(
                        "Redis compare-and-delete",
                        invocation.invoke_async(&mut conn),
                    )
                    .await?;
                Ok(deleted == 1)
            }
            SharedStore::Memory(map) => {
                let mut map = lock(map);
                if live(&mut map, key).is_some_and(|(value, _)| value == expected) {
                    map.remove(key);
                    return Ok(true);
                }
                Ok(false)
            }
        }
    }

    /// Adds one to the counter at `key` and returns the new value. The first increment starts
    /// the window: the key expires `window` after it, however often it is incremented since.
    pub async fn incr(&self, key: &str, window: Duration) -> anyhow::Result<i64> {
        match self {
            SharedStore::Redis {
                conn,
                prefix,
                breaker,
            } => {
                let mut conn = conn.clone();
                let script = redis::Script::new(INCR_WITH_EXPIRY);
                let mut invocation = script.key(format!("{prefix}{key}"));
                invocation.arg(window.as_millis().max(1) as u64);
                let n: i64 = breaker
                    .call("Redis INCR", invocation.invoke_async(&mut conn))
                    .await?;
                Ok(n)
            }
            SharedStore::Memory(map) => {
                let mut map = lock(map);
                let (n, until) = match live(&mut map, key) {
                    Some((value, until)) => (value.parse::<i64>().unwrap_or(0) + 1, *until),
                    None => (1, Instant::now() + window),
                };
                map.insert(key.to_string(), (n.to_string(), until));
                Ok(n)
            }
        }
    }

    /// Takes one back from a live counter (never below zero, never reviving an expired one),
    /// keeping its window.
    pub async fn decr(&self, key: &str) -> anyhow::Result<()> {
        match self {
            SharedStore::Redis {
                conn,
                prefix,
                breaker,
            } => {
                let mut conn = conn.clone();
                let script = redis::Script::new(DECR_IF_POSITIVE);
                let invocation = script.key(format!("{prefix}{key}"));
                let _: i64 = breaker
                    .call("Redis DECR", invocation.invoke_async(&mut conn))
                    .await?;
            }
            SharedStore::Memory(map) => {
                let mut map = lock(map);
                if let Some((value, until)) = live(&mut map, key).cloned() {
                    let n = value.parse::<i64>().unwrap_or(0);
                    map.insert(key.to_string(), ((n - 1).max(0).to_string(), until));
                }
            }
        }
        Ok(())
    }

    pub async fn ping(&self) -> anyhow::Result<()> {
        if let SharedStore::Redis { conn, breaker, .. } = self {
            let mut conn = conn.clone();
            // Readiness asks Redis itself, whatever the breaker says.
            let _: String =
                tokio::time::timeout(CALL_TIMEOUT, redis::cmd("PING").query_async(&mut conn))
                    .await
                    .context("Redis PING timed out")?
                    .context("Redis PING")?;
            breaker.succeeded();
        }
        Ok(())
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding this lock cannot leave the map half-written, so poisoning is moot.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn live<'a>(
    map: &'a mut HashMap<String, (String, Instant)>,
    key: &str,
) -> Option<&'a (String, Instant)> {
    if map
        .get(key)
        .is_some_and(|(_, until)| *until <= Instant::now())
    {
        map.remove(key);
    }
    map.get(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn memory_store_honours_nx_expiry_and_compare_and_delete() {
        let store = SharedStore::memory();
        assert!(store
            .set("k", "a", Duration::from_secs(10), true)
            .await
            .unwrap());
        assert!(!store
            .set("k", "b", Duration::from_secs(10), true)
            .await
            .unwrap());
        assert!(!store.compare_and_delete("k", "b").await.unwrap());
        assert!(store.compare_and_delete("k", "a").await.unwrap());
        assert_eq!(store.get("k").await.unwrap(), None);
        store
            .set("short", "x", Duration::from_millis(1), false)
            .await
            .unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while store.get("short").await.unwrap().is_some() {
            assert!(
                std::time::Instant::now() < deadline,
                "the value never expired"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    #[tokio::test]
    async fn memory_counters_count_within_their_window() {
        let store = SharedStore::memory();
        let window = Duration::from_secs(600);
        assert_eq!(store.incr("c", window).await.unwrap(), 1);
        assert_eq!(store.incr("c", window).await.unwrap(), 2);
        store.decr("c").await.unwrap();
        assert_eq!(store.incr("c", window).await.unwrap(), 2);
        store.decr("missing").await.unwrap();
        assert_eq!(store.get("missing").await.unwrap(), None);
        // A counter starts again once its window has passed.
        let short = Duration::from_millis(20);
        assert_eq!(store.incr("s", short).await.unwrap(), 1);
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while store.incr("s", short).await.unwrap() != 1 {
            assert!(
                std::time::Instant::now() < deadline,
                "the window never ended"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}
