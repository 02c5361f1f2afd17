//! The "friends who never interact" signal through the push path: an inviter whose twelve
//! friends (followed three days ago) never did anything since is flagged, with the silent share
//! as evidence, at the next push that concerns them; an inviter half of whose friends wrote to
//! the account is not. The count of friends who interacted moves once per friend, at their
//! first message after following.

use chrono::Utc;
use serde_json::Value;

use crate::helpers::{openid, Deployment, FakeWechat, TestApp};
use crate::risk::{default_campaign, text};

const DAY: i64 = 86_400;

async fn user(app: &TestApp, openid: &str) -> Value {
    let response = app.api_get(&format!("/api/v1/users/{openid}")).await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

async fn active(app: &TestApp, campaign: i64, inviter: &str) -> i32 {
    sqlx::query_scalar(
        "SELECT friends_active FROM risk_inviters WHERE campaign_id = $1 AND openid = $2",
    )
    .bind(campaign)
    .bind(inviter)
    .fetch_one(&app.pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn friends_who_never_interact_fire_the_signal_and_friends_who_talk_do_not() {
    let wechat = FakeWechat::start(100_000, None).await;
    let app = TestApp::spawn(&Deployment::new(&wechat)).await;
    let campaign = default_campaign(&app).await;
    // Off by default (most real followers never write); this campaign turns it on.
    sqlx::query("UPDATE campaigns SET risk_silent_percent = 90 WHERE id = $1")
        .bind(campaign)
        .execute(&app.pool)
        .await
        .unwrap();
    let t0 = Utc::now().timestamp() - 3 * DAY;
    let silent = openid("slsilent", 0);
    let talking = openid("sltalking", 0);
    let silent_scene = app.issue_code(&silent).await["scene_id"].as_i64().unwrap();
    let talking_scene = app.issue_code(&talking).await["scene_id"].as_i64().unwrap();
    for i in 0..12 {
        let at = t0 + i as i64 * 300;
        let r = app
            .subscribe(&openid("slsf", i), Some(silent_scene), at)
            .await;
        assert_eq!(r.status(), 200);
        let r = app
            .subscribe(&openid("sltf", i), Some(talking_scene), at)
            .await;
        assert_eq!(r.status(), 200);
    }
    // Half of `talking`'s friends write, each twice (counted once).
    for i in (0..12).step_by(2) {
        let friend = openid("sltf", i);
        assert_eq!(text(&app, &friend, "你好", t0 + 4 * 3600).await, 200);
        assert_eq!(text(&app, &friend, "在吗", t0 + 5 * 3600).await, 200);
    }
    assert_eq!(active(&app, campaign, &talking).await, 6);
    assert_eq!(active(&app, campaign, &silent).await, 0);
    // Within the first day nothing fired: the friends had no time to talk.
    assert_eq!(user(&app, &silent).await["risk"]["status"], "ok");

    // The next friend of each, today: the counters are read again, twelve friends are older
    // than a day, and all of `silent`'s never did anything.
    let now = Utc::now().timestamp();
    app.subscribe(&openid("slsf", 12), Some(silent_scene), now)
        .await;
    app.subscribe(&openid("sltf", 12), Some(talking_scene), now)
        .await;
    let view = user(&app, &silent).await;
    assert_eq!(view["risk"]["status"], "flagged", "{view}");
    let signals = view["risk"]["signals"].as_array().unwrap();
    assert_eq!(signals.len(), 1, "{view}");
    assert_eq!(signals[0]["name"], "friends_silent_percent");
    assert_eq!(signals[0]["value"], 100.0);
    assert_eq!(signals[0]["threshold"], 90.0);
    let view = user(&app, &talking).await;
    assert_eq!(view["risk"]["status"], "ok", "{view}");
    assert_eq!(view["risk"]["signals"], serde_json::json!([]), "{view}");

    // A silent friend writing now counts once for their inviter, the signal's evidence stays.
    assert_eq!(text(&app, &openid("slsf", 3), "hi", now + 5).await, 200);
    assert_eq!(text(&app, &openid("slsf", 3), "hi", now + 6).await, 200);
    assert_eq!(active(&app, campaign, &silent).await, 1);
    assert_eq!(user(&app, &silent).await["risk"]["status"], "flagged");
}
