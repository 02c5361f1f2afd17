//! The smaller holes: follower sessions that never end, an unparseable push timestamp, and a
//! health page that ignores the configured permanent-code quota.

use actix_web::cookie::{Cookie, CookieJar, Key};
use chrono::Utc;
use fission::wechat::crypto::signature;
use fission::wechat::outgoing::{event, nonce, sign_push};
use reqwest::header::COOKIE;

use crate::admin_client::{with_admin, Operator};
use crate::helpers::{openid, Deployment, FakeWechat, TestApp, TOKEN};
use crate::invite::sign_in;

const SESSION_KEY: &str =
    "a-session-key-for-tests-that-is-long-enough-0123456789abcdefghijklmnopqrstuvwxyz";

/// A session cookie as this server would encrypt it, holding `values`.
fn session_cookie(values: &[(&str, serde_json::Value)]) -> String {
    let state: std::collections::HashMap<String, String> = values
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let mut jar = CookieJar::new();
    jar.private_mut(&Key::derive_from(SESSION_KEY.as_bytes()))
        .add(Cookie::new(
            "fission_invite",
            serde_json::to_string(&state).unwrap(),
        ));
    let cookie = jar.get("fission_invite").unwrap();
    format!("fission_invite={}", cookie.value())
}

#[tokio::test]
async fn follower_sessions_end() {
    let wechat = FakeWechat::start(100_000, None).await;
    let app =
        TestApp::spawn(&Deployment::new(&wechat).set("FISSION_SESSION_KEY", SESSION_KEY)).await;
    let alice = openid("oldsession", 1);
    wechat.sim.add_user(&alice, "阿丽", true);
    // A fresh sign-in works; a session without a sign-in time, or signed in 31 days ago, does not.
    let fresh = sign_in(&app, &wechat, &alice, "snsapi_base").await;
    let page = fresh
        .get(format!("{}/invite", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let month_ago = Utc::now().timestamp() - 31 * 24 * 3600;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for cookie in [
        session_cookie(&[("openid", alice.clone().into())]),
        session_cookie(&[
            ("openid", alice.clone().into()),
            ("signed_in_at", month_ago.into()),
        ]),
    ] {
        let page = http
            .get(format!("{}/invite", app.address))
            .header(COOKIE, cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), 302, "an old session still signs in");
    }
}

#[tokio::test]
async fn a_push_with_an_unreadable_timestamp_is_refused() {
    let wechat = FakeWechat::start(100_000, None).await;
    let app = TestApp::spawn(&Deployment::new(&wechat)).await;
    let push = event(
        "gh_test",
        &openid("badts", 1),
        Utc::now().timestamp(),
        "subscribe",
        None,
        None,
    );
    let body = sign_push(TOKEN, None, &push, 0, "1").body;
    for timestamp in ["not-a-time", "-9223372036854775808", ""] {
        let nonce = nonce();
        let response = app
            .http
            .post(format!("{}/wechat/callback", app.address))
            .query(&[
                ("signature", signature(&[TOKEN, timestamp, &nonce])),
                ("timestamp", timestamp.to_string()),
                ("nonce", nonce.clone()),
            ])
            .header("content-type", "text/xml")
            .body(body.clone())
            .send()
            .await
            .expect("the server answers");
        assert_eq!(response.status(), 403, "timestamp {timestamp:?}");
    }
    assert_eq!(app.events_count().await, 0);
}

#[tokio::test]
async fn the_health_page_counts_against_the_configured_quota() {
    let wechat = FakeWechat::start(100_000, None).await;
    let app = TestApp::spawn(&with_admin(
        Deployment::new(&wechat).set("FISSION_PERMANENT_QUOTA", "40"),
    ))
    .await;
    app.issue_code(&openid("quota", 1)).await;
    let mut operator = Operator::new(&app);
    operator.login().await;
    for path in ["/admin/health", "/admin"] {
        let page = operator.get(path).await.text().await.unwrap();
        assert!(
            page.contains("/ 40"),
            "{path} does not show the quota of 40"
        );
    }
    let health = operator.get("/admin/health").await.text().await.unwrap();
    assert!(
        health.contains("(2%)") || health.contains("(3%)"),
        "1 of 40"
    );
}
