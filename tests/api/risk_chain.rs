//! Chains through the push path: a friend who followed through someone's code ten minutes
//! before bursting at the per-minute rate fires `chain_burst` besides the velocity signal; one
//! who followed a day before the same burst fires only the velocity signal.

use chrono::Utc;
use serde_json::Value;

use crate::helpers::{openid, Deployment, FakeWechat, TestApp};
use crate::risk::default_campaign;

const DAY: i64 = 86_400;

async fn signal_names(app: &TestApp, openid: &str) -> Vec<String> {
    let response = app.api_get(&format!("/api/v1/users/{openid}")).await;
    assert_eq!(response.status(), 200);
    let view: Value = response.json().await.unwrap();
    let mut names: Vec<String> = view["risk"]["signals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    names
}

/// Eleven friends through `inviter`'s code within 33 s from `t0`.
async fn burst(app: &TestApp, inviter: &str, tag: &str, t0: i64) {
    let scene = app.issue_code(inviter).await["scene_id"].as_i64().unwrap();
    for i in 0..11 {
        let r = app
            .subscribe(&openid(tag, i), Some(scene), t0 + i as i64 * 3)
            .await;
        assert_eq!(r.status(), 200);
    }
}

#[tokio::test]
async fn a_new_friend_bursting_at_once_is_a_chain_and_an_old_one_is_not() {
    let wechat = FakeWechat::start(100_000, None).await;
    let app = TestApp::spawn(&Deployment::new(&wechat)).await;
    default_campaign(&app).await;
    let t0 = Utc::now().timestamp() - 2 * DAY;
    let origin = openid("chorigin", 0);
    let newcomer = openid("chnew", 0);
    let old_friend = openid("chold", 0);
    let scene = app.issue_code(&origin).await["scene_id"].as_i64().unwrap();
    assert_eq!(
        app.subscribe(&old_friend, Some(scene), t0 - DAY)
            .await
            .status(),
        200
    );
    assert_eq!(
        app.subscribe(&newcomer, Some(scene), t0).await.status(),
        200
    );

    burst(&app, &newcomer, "chnewf", t0 + 600).await;
    burst(&app, &old_friend, "cholff", t0 + 600).await;
    assert_eq!(
        signal_names(&app, &newcomer).await,
        ["chain_burst", "credits_per_minute"]
    );
    assert_eq!(
        signal_names(&app, &old_friend).await,
        ["credits_per_minute"]
    );
    assert!(signal_names(&app, &origin).await.is_empty());
}
