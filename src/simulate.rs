//! `fission simulate`: signs a real WeChat event and posts it to an instance's callback — the
//! same bytes WeChat would send, for demos, staging checks and operators.

use anyhow::Context;
use chrono::Utc;
use secrecy::ExposeSecret;

use crate::config::Settings;
use crate::wechat::crypto::MessageCrypto;
use crate::wechat::outgoing::{event, nonce, sign_push};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SimulatedEvent {
    Subscribe,
    Scan,
    Unsubscribe,
}

/// Posts the event and returns the HTTP status and body of the callback's answer.
pub async fn send(
    settings: &Settings,
    kind: SimulatedEvent,
    openid: &str,
    scene: Option<&str>,
    target: &str,
) -> anyhow::Result<(u16, String)> {
    let (name, key) = match kind {
        SimulatedEvent::Subscribe => ("subscribe", scene.map(|s| format!("qrscene_{s}"))),
        SimulatedEvent::Scan => (
            "SCAN",
            Some(scene.context("--scene is required for scan")?.to_string()),
        ),
        SimulatedEvent::Unsubscribe => ("unsubscribe", None),
    };
    let now = Utc::now().timestamp();
    let push = event(
        "gh_fission",
        openid,
        now,
        name,
        key,
        scene.map(|_| "SIMULATED".to_string()),
    );
    let token = settings.wechat.token.expose_secret();
    let crypto = match &settings.wechat.encoding_aes_key {
        Some(key) => Some(MessageCrypto::new(
            key.expose_secret(),
            token,
            &settings.wechat.appid,
        )?),
        None => None,
    };
    let signed = sign_push(token, crypto.as_ref(), &push, now, &nonce());
    let url = format!("{}/wechat/callback", target.trim_end_matches('/'));
    let response = reqwest::Client::new()
        .post(&url)
        .query(&signed.query)
        .header("content-type", "text/xml")
        .body(signed.body)
        .send()
        .await
        .with_context(|| format!("posting to {url}"))?;
    let status = response.status().as_u16();
    Ok((status, response.text().await.unwrap_or_default()))
}
