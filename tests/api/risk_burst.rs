//! The "burst on one scene while the account is otherwise quiet" signal through the push path,
//! on two instances sharing the account's follow counts: eight friends through one code within
//! 40 s (below the velocity threshold) on a quiet account flag the inviter with the share as
//! evidence; the same eight while the account follows in a crowd — most of the crowd pushed to
//! the other instance — fire nothing; honest inviters at a steady pace stay untouched; a
//! duplicate push counts once; day-old counts are forgotten.

use chrono::Utc;
use serde_json::Value;

use crate::admin_client::{with_admin, Operator};
use crate::helpers::{openid, Deployment, FakeWechat, TestApp};
use crate::risk::{default_campaign, save_policy};

const DAY: i64 = 86_400;

async fn user(app: &TestApp, openid: &str) -> Value {
    let response = app.api_get(&format!("/api/v1/users/{openid}")).await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

/// The account's follows counted in the buckets covering [from, to] (unix seconds).
async fn counted(app: &TestApp, from: i64, to: i64) -> i64 {
    sqlx::query_scalar(
        "SELECT COALESCE(sum(follows), 0)::bigint FROM account_follows
         WHERE bucket BETWEEN $1 - $1 % 10 AND $2",
    )
    .bind(from)
    .bind(to)
    .fetch_one(&app.pool)
    .await
    .unwrap()
}

/// The operator turns the signal on on the campaign's risk page (out of range is refused).
async fn turn_on(app: &TestApp, campaign: i64) {
    let mut operator = Operator::new(app);
    operator.login().await;
    let burst = |min, percent| [("risk_burst_min", min), ("risk_burst_percent", percent)];
    assert_eq!(
        save_policy(&mut operator, campaign, &burst("101", "80")).await,
        400
    );
    assert_eq!(
        save_policy(&mut operator, campaign, &burst("6", "0")).await,
        400
    );
    assert_eq!(
        save_policy(&mut operator, campaign, &burst("6", "80")).await,
        303
    );
    let page = format!("/admin/campaigns/{campaign}/risk");
    let html = operator.get(&page).await.text().await.unwrap();
    assert!(
        html.contains("name=\"risk_burst_min\" min=\"0\" max=\"100\" value=\"6\""),
        "{html}"
    );
}

#[tokio::test]
async fn a_burst_on_one_code_is_flagged_only_while_the_rest_of_the_account_is_quiet() {
    let wechat = FakeWechat::start(100_000, None).await;
    let deployment = with_admin(Deployment::new(&wechat));
    let a = TestApp::spawn(&deployment).await;
    let b = TestApp::spawn(&deployment).await;
    let campaign = default_campaign(&a).await;
    turn_on(&a, campaign).await;

    // A quiet hour two days ago: eight friends through one code within 40 s, nothing else.
    let quiet_t0 = Utc::now().timestamp() - 2 * DAY;
    let farmer = openid("sbfarmer", 0);
    let scene = a.issue_code(&farmer).await["scene_id"].as_i64().unwrap();
    for i in 0..8 {
        let r = a
            .subscribe(&openid("sbff", i), Some(scene), quiet_t0 + i as i64 * 5)
            .await;
        assert_eq!(r.status(), 200);
    }
    // WeChat retrying one of them: a duplicate is no new follow.
    let r = a
        .subscribe(&openid("sbff", 7), Some(scene), quiet_t0 + 35)
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(counted(&a, quiet_t0 - 60, quiet_t0 + 60).await, 8);
    let view = user(&a, &farmer).await;
    assert_eq!(view["risk"]["status"], "flagged", "{view}");
    let signals = view["risk"]["signals"].as_array().unwrap();
    assert_eq!(signals.len(), 1, "only the burst, not the velocity: {view}");
    assert_eq!(signals[0]["name"], "scene_burst");
    assert_eq!(signals[0]["value"], 100.0);
    assert_eq!(signals[0]["threshold"], 80.0);

    // A busy hour, 23 hours ago: the same eight through another code, each after four other
    // people followed that minute — by no code, or through honest inviters' codes — pushed to
    // the other instance. 8 of 40: 20 %.
    let busy_t0 = quiet_t0 + DAY + 3600;
    let sharer = openid("sbsharer", 0);
    let scene = a.issue_code(&sharer).await["scene_id"].as_i64().unwrap();
    let honest: Vec<String> = (0..3).map(|i| openid("sbhonest", i)).collect();
    let mut honest_scenes = Vec::new();
    for inviter in &honest {
        honest_scenes.push(b.issue_code(inviter).await["scene_id"].as_i64().unwrap());
    }
    let mut crowd = 0;
    for i in 0..8 {
        let at = busy_t0 + i as i64 * 5;
        for j in 0..4 {
            // One of every four through an honest inviter's code, the rest by no code.
            let through = (j == 0).then(|| honest_scenes[i % 3]);
            let r = b.subscribe(&openid("sbcrowd", crowd), through, at).await;
            assert_eq!(r.status(), 200);
            crowd += 1;
        }
        let r = a.subscribe(&openid("sbsf", i), Some(scene), at + 1).await;
        assert_eq!(r.status(), 200);
    }
    assert_eq!(counted(&a, busy_t0 - 60, busy_t0 + 60).await, 40);
    let view = user(&a, &sharer).await;
    assert_eq!(view["risk"]["status"], "ok", "{view}");
    assert_eq!(view["risk"]["signals"], serde_json::json!([]), "{view}");
    assert_eq!(view["invites"], 8);

    // Honest inviters at a steady pace on a quiet day: one friend every 40 s, three each.
    let steady_t0 = busy_t0 + 3600;
    for (k, &scene) in honest_scenes.iter().enumerate() {
        for i in 0..3 {
            let at = steady_t0 + (i * 3 + k) as i64 * 40;
            let r = a
                .subscribe(&openid("sbsteady", k * 10 + i), Some(scene), at)
                .await;
            assert_eq!(r.status(), 200);
        }
    }
    for inviter in &honest {
        let view = user(&a, inviter).await;
        assert_eq!(view["risk"]["status"], "ok", "{view}");
        assert_eq!(view["risk"]["signals"], serde_json::json!([]), "{view}");
    }

    // The review page names the signal and its evidence.
    let mut operator = Operator::new(&a);
    operator.login().await;
    let html = operator
        .get(&format!("/admin/risk/{campaign}/{farmer}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains("scene_burst"), "{html}");

    // Counts over a day old are forgotten by every instance's periodic job (it runs at start);
    // those of 23 hours ago stay.
    let _c = TestApp::spawn(&deployment).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while counted(&a, quiet_t0 - 60, quiet_t0 + 60).await > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "day-old follow counts were not forgotten"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(counted(&a, busy_t0 - 60, busy_t0 + 60).await, 40);
}
