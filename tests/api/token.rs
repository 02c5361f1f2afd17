//! The shared access_token: one fetch for a whole cluster, one refresh after WeChat rejects
//! it, and no retry loop on configuration errors.

use fission::config::WechatSettings;
use fission::shared_store::SharedStore;
use fission::telemetry::Metrics;
use fission::wechat::{WechatClient, WechatError};
use futures_util::future::join_all;
use secrecy::SecretString;

use crate::helpers::{FakeWechat, APPID, REDIS_URL, SECRET, TOKEN};

fn wechat_settings(wechat: &FakeWechat, secret: &str, stable: bool) -> WechatSettings {
    WechatSettings {
        appid: APPID.into(),
        secret: SecretString::from(secret.to_string()),
        token: SecretString::from(TOKEN.to_string()),
        encoding_aes_key: None,
        api_base: wechat.base.clone(),
        mp_base: wechat.base.clone(),
        open_base: wechat.base.clone(),
        use_stable_token: stable,
    }
}

/// Three clients as three instances would have them: each its own Redis connection, one prefix.
async fn cluster(wechat: &FakeWechat, secret: &str, stable: bool) -> Vec<WechatClient> {
    let prefix = format!("test:{}:", uuid::Uuid::new_v4().simple());
    let mut clients = Vec::new();
    for _ in 0..3 {
        let store = SharedStore::redis(REDIS_URL, &prefix).await.expect("redis");
        clients.push(
            WechatClient::new(
                wechat_settings(wechat, secret, stable),
                store,
                Metrics::new(),
            )
            .unwrap(),
        );
    }
    clients
}

async fn call_everywhere(
    clients: &[WechatClient],
    per_client: usize,
) -> Vec<Result<(), WechatError>> {
    let calls = clients
        .iter()
        .flat_map(|c| (0..per_client).map(move |_| c.clone()))
        .map(|c| async move { c.followers(None).await.map(drop) });
    join_all(calls).await
}

#[tokio::test]
async fn three_instances_share_one_token_and_refresh_it_once() {
    let wechat = FakeWechat::start(100_000, None).await;
    let clients = cluster(&wechat, SECRET, true).await;

    let results = call_everywhere(&clients, 100).await;
    assert!(
        results.iter().all(Result::is_ok),
        "{:?}",
        results.iter().find(|r| r.is_err())
    );
    assert_eq!(
        wechat.sim.calls("stable_token"),
        1,
        "300 concurrent calls, one token fetch"
    );
    assert_eq!(wechat.sim.calls("user/get"), 300);

    // WeChat now rejects the token (40001) for everyone.
    wechat.sim.invalidate_tokens();
    let results = call_everywhere(&clients, 100).await;
    assert!(
        results.iter().all(Result::is_ok),
        "{:?}",
        results.iter().find(|r| r.is_err())
    );
    assert_eq!(
        wechat.sim.calls("stable_token"),
        2,
        "exactly one refresh after 40001"
    );
}

#[tokio::test]
async fn the_classic_token_endpoint_is_shared_too() {
    let wechat = FakeWechat::start(100_000, None).await;
    let clients = cluster(&wechat, SECRET, false).await;
    let results = call_everywhere(&clients, 50).await;
    assert!(results.iter().all(Result::is_ok));
    assert_eq!(wechat.sim.calls("token"), 1);
    assert_eq!(wechat.sim.calls("stable_token"), 0);
}

#[tokio::test]
async fn a_wrong_secret_is_a_configuration_error_without_retries() {
    let wechat = FakeWechat::start(100_000, None).await;
    let clients = cluster(&wechat, "not-the-secret", true).await;
    let err = clients[0].followers(None).await.unwrap_err();
    match &err {
        WechatError::Config { errcode, .. } => assert_eq!(*errcode, 40125),
        other => panic!("expected a configuration error, got {other:?}"),
    }
    assert!(err.to_string().contains("WECHAT_SECRET"), "{err}");
    assert_eq!(wechat.sim.calls("stable_token"), 1, "no retry loop");
    assert_eq!(wechat.sim.calls("user/get"), 0);
}

#[tokio::test]
async fn system_busy_is_retried_with_backoff() {
    let wechat = FakeWechat::start(100_000, None).await;
    let clients = cluster(&wechat, SECRET, true).await;
    wechat.sim.fail_next("user/get", -1, 2);
    clients[0]
        .followers(None)
        .await
        .expect("succeeds after two busy answers");
    assert_eq!(wechat.sim.calls("user/get"), 3);
    // A configuration error on an API call is not retried either.
    wechat.sim.fail_next("user/get", 48001, 1);
    let err = clients[0].followers(None).await.unwrap_err();
    assert!(
        matches!(err, WechatError::Config { errcode: 48001, .. }),
        "{err:?}"
    );
    assert_eq!(wechat.sim.calls("user/get"), 4);
}
