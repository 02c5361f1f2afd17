//! Delivers webhook events. Deliveries are claimed in rounds with a lease (`db::webhooks::claim`
//! hands out only the oldest pending delivery of each endpoint-and-follower queue, so one
//! follower's events reach an endpoint in order), POSTed signed, and marked delivered on any
//! 2xx; anything else is retried with backoff — 1, 2, 4 … seconds, then at most hourly — for a
//! day, then marked failed (the dashboard replays it). A crash mid-flight re-sends that one
//! delivery when its lease runs out; nothing else is ever sent twice.
//!
//! Targets on loopback, private or link-local addresses are refused, unless
//! `FISSION_WEBHOOK_ALLOW_PRIVATE` says so: at registration (`check_target`) and again at every
//! delivery, after DNS resolution, so a name that later points inside the network gets nothing.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::stream::{self, StreamExt};
use hmac::{Hmac, Mac};
use reqwest::redirect::Policy;
use reqwest::Url;
use serde_json::json;
use sha2::Sha256;
use tokio::sync::watch;

use crate::config::Settings;
use crate::db;
use crate::db::webhooks::Claimed;
use crate::poster::avatar::{is_public, PublicAddressesOnly};
use crate::state::AppState;

const TIMEOUT: Duration = Duration::from_secs(10);
/// Longer than an attempt can take: a delivery claimed by a process that died is retried after.
const LEASE_SECS: i64 = 30;
const BATCH: i64 = 32;
const CONCURRENCY: usize = 16;
const IDLE_POLL: Duration = Duration::from_millis(250);
/// The longest wait between two attempts.
const MAX_BACKOFF_SECS: i64 = 3600;

/// Seconds before the next attempt, after `attempts` failed ones: 1, 2, 4 … up to an hour.
pub fn backoff_secs(attempts: i32) -> i64 {
    let exp = attempts.clamp(1, 20) - 1;
    (1i64 << exp).min(MAX_BACKOFF_SECS)
}

/// `sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>`.
pub fn signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    // HMAC takes a key of any length.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Why an endpoint URL is refused, in words for the operator.
pub async fn check_target(settings: &Settings, url: &str) -> Result<Url, String> {
    let url = Url::parse(url).map_err(|_| "the URL is not valid".to_string())?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("the URL must be http or https".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("the URL must not carry credentials".into());
    }
    let Some(host) = url.host_str().map(str::to_string) else {
        return Err("the URL has no host".into());
    };
    if settings.webhook_allow_private {
        return Ok(url);
    }
    let port = url.port_or_known_default().unwrap_or(443);
    let addresses: Vec<IpAddr> = match literal_ip(&host) {
        Some(ip) => vec![ip],
        None => tokio::net::lookup_host((host.as_str(), port))
            .await
            .map_err(|_| format!("{host} does not resolve"))?
            .map(|a| a.ip())
            .collect(),
    };
    if addresses.is_empty() || !addresses.into_iter().all(is_public) {
        return Err(format!(
            "{host} is a loopback, private or link-local address (set FISSION_WEBHOOK_ALLOW_PRIVATE=true to allow it)"
        ));
    }
    Ok(url)
}

fn literal_ip(host: &str) -> Option<IpAddr> {
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()
}

/// A client that never follows redirects (a 3xx is a failed delivery) and, unless private
/// targets are allowed, connects only to public addresses of the names it resolves.
fn client(settings: &Settings) -> anyhow::Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder()
        .timeout(TIMEOUT)
        .connect_timeout(TIMEOUT)
        .redirect(Policy::none());
    if !settings.webhook_allow_private {
        builder = builder.dns_resolver(Arc::new(PublicAddressesOnly));
    }
    Ok(builder.build()?)
}

pub async fn run(state: AppState, mut shutdown: watch::Receiver<bool>) {
    let client = match client(&state.settings) {
        Ok(client) => client,
        Err(e) => {
            tracing::error!(error = ?e, "could not build the webhook client; webhooks are not delivered");
            return;
        }
    };
    loop {
        if *shutdown.borrow() {
            return;
        }
        let claimed = match db::webhooks::claim(&state.pool, BATCH, LEASE_SECS).await {
            Ok(claimed) => claimed,
            Err(e) => {
                tracing::warn!(error = ?e, "claiming webhook deliveries failed");
                Vec::new()
            }
        };
        if claimed.is_empty() {
            tokio::select! {
                _ = tokio::time::sleep(IDLE_POLL) => {}
                _ = shutdown.changed() => return,
            }
            continue;
        }
        stream::iter(claimed)
            .for_each_concurrent(CONCURRENCY, |d| deliver(&state, &client, d))
            .await;
    }
}

/// What an attempt came to: the receiver's status, or why there was none.
enum Attempt {
    Answered(u16),
    Failed(String),
}

async fn deliver(state: &AppState, client: &reqwest::Client, d: Claimed) {
    let attempt = attempt(&state.settings, client, &d).await;
    let stored = match attempt {
        Attempt::Answered(status) if (200..300).contains(&status) => {
            db::webhooks::delivered(&state.pool, d.id, i32::from(status)).await
        }
        Attempt::Answered(status) => {
            let error = format!("the receiver answered {status}");
            let retry = backoff_secs(d.attempts);
            db::webhooks::attempt_failed(&state.pool, d.id, Some(i32::from(status)), &error, retry)
                .await
        }
        Attempt::Failed(error) => {
            let retry = backoff_secs(d.attempts);
            db::webhooks::attempt_failed(&state.pool, d.id, None, &error, retry).await
        }
    };
    if let Err(e) = stored {
        // The lease runs out and the delivery is tried again.
        tracing::warn!(error = ?e, delivery = d.id, "could not store a webhook attempt");
    }
}

async fn attempt(settings: &Settings, client: &reqwest::Client, d: &Claimed) -> Attempt {
    // A literal address is never resolved, so it is checked here; names are checked by the
    // client's resolver, after resolution.
    let url = match Url::parse(&d.url) {
        Ok(url) => url,
        Err(_) => return Attempt::Failed("the endpoint URL is not valid".into()),
    };
    let literal = url.host_str().and_then(literal_ip);
    if !settings.webhook_allow_private && literal.is_some_and(|ip| !is_public(ip)) {
        return Attempt::Failed("the endpoint is on a private or loopback address".into());
    }
    let body = json!({
        "id": d.event_id,
        "type": d.event_type,
        "occurred_at": d.occurred_at,
        "data": d.data,
    })
    .to_string();
    let timestamp = chrono::Utc::now().timestamp();
    let sent = client
        .post(url)
        .header("content-type", "application/json")
        .header("user-agent", "Fission-Webhooks")
        .header("x-fission-event", &d.event_type)
        .header("x-fission-timestamp", timestamp.to_string())
        .header(
            "x-fission-signature",
            signature(&d.secret, timestamp, body.as_bytes()),
        )
        .body(body)
        .send()
        .await;
    match sent {
        Ok(response) => Attempt::Answered(response.status().as_u16()),
        Err(e) => {
            let e = e.without_url();
            let why = if e.is_timeout() {
                "no answer within 10 s".to_string()
            } else if e.is_connect() {
                format!("could not connect: {e}")
            } else {
                e.to_string()
            };
            Attempt::Failed(why)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_from_seconds_to_an_hour() {
        let waits: Vec<i64> = (1..=6).map(backoff_secs).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32]);
        assert_eq!(backoff_secs(40), MAX_BACKOFF_SECS);
        // A day of retries is about three dozen attempts.
        let mut total = 0;
        let mut n = 0;
        while total < 86_400 {
            n += 1;
            total += backoff_secs(n);
        }
        assert!((25..40).contains(&n), "{n}");
    }

    #[test]
    fn the_signature_is_hmac_sha256_over_timestamp_dot_body() {
        // Reference value computed with: printf '1700000000.{}' | openssl dgst -sha256 -hmac s3cret
        assert_eq!(
            signature("s3cret", 1_700_000_000, b"{}"),
            "sha256=97926816e98fbb41ccb1673225ff29a2f35369099990e1b1561651e7bd097ebf"
        );
    }
}
