//! Webhooks through the HTTP surface: registration (and refusal of private targets), signed
//! deliveries of what the push path decides, retries in order per follower, and the dashboard
//! page (endpoints, log, test event, replay).

use std::time::Duration;

use chrono::Utc;
use serde_json::Value;

use crate::admin_client::{csrf_in, with_admin, Operator};
use crate::helpers::{openid, Deployment, FakeWechat, TestApp};
use crate::hook_receiver::{expected_signature, register, Got, Receiver};

const SECRET: &str = "whsec-test-0123";

fn allowing_private(wechat: &FakeWechat) -> Deployment {
    Deployment::new(wechat).set("FISSION_WEBHOOK_ALLOW_PRIVATE", "true")
}

async fn campaign_from_the_past(app: &TestApp) -> i64 {
    sqlx::query_scalar(
        "UPDATE campaigns SET starts_at = '2020-01-01' WHERE is_default RETURNING id",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap()
}

fn of_type<'a>(got: &'a [Got], kind: &str) -> Vec<&'a Got> {
    got.iter().filter(|g| g.event == kind).collect()
}

/// The event types delivered about `follower`, in the order they were accepted.
fn types_about(got: &[Got], follower: &str) -> Vec<String> {
    got.iter()
        .filter(|g| {
            let data = &g.json()["data"];
            data["invitee_openid"] == follower || data["openid"] == follower
        })
        .map(|g| g.event.clone())
        .collect()
}

#[tokio::test]
async fn a_credit_a_reward_and_a_revocation_are_delivered_signed_with_their_data() {
    let wechat = FakeWechat::start(100_000, None).await;
    let app = TestApp::spawn(&allowing_private(&wechat)).await;
    let campaign = campaign_from_the_past(&app).await;
    let tier = fission::db::campaigns::add_tier(&app.pool, campaign, 1, "贴纸", false)
        .await
        .unwrap();
    let receiver = Receiver::start(0).await;
    let (status, body) = register(&app, &receiver.url, SECRET, &["*"]).await;
    assert_eq!(status, 201, "{body}");
    assert!(body["id"].as_i64().is_some());
    let listed: Vec<Value> = app.api_get("/api/v1/webhooks").await.json().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["url"], receiver.url.as_str());
    assert!(
        listed[0].get("secret").is_none(),
        "the secret is never shown"
    );

    let inviter = openid("hookinv", 1);
    let friend = openid("hookfriend", 1);
    let scene = app.issue_code(&inviter).await["scene_id"].as_i64().unwrap();
    let t = Utc::now().timestamp() - 600;
    assert_eq!(app.subscribe(&friend, Some(scene), t).await.status(), 200);
    // Inside the campaign's 7-day revoke window.
    assert_eq!(app.unsubscribe(&friend, t + 60).await.status(), 200);

    let got = receiver
        .wait_for(30, |got| {
            [
                "code.scanned",
                "referral.credited",
                "referral.revoked",
                "reward.granted",
            ]
            .iter()
            .all(|kind| got.iter().any(|g| g.event == *kind))
        })
        .await;
    for g in &got {
        assert_eq!(
            g.signature,
            expected_signature(SECRET, &g.timestamp, &g.body)
        );
        let ts: i64 = g.timestamp.parse().unwrap();
        assert!(
            (Utc::now().timestamp() - ts).abs() < 120,
            "a fresh timestamp"
        );
        let body = g.json();
        assert_eq!(body["type"], g.event.as_str());
        assert!(body["id"].as_str().is_some_and(|id| !id.is_empty()));
        assert!(body["occurred_at"].as_str().is_some());
    }
    let credited = of_type(&got, "referral.credited")[0].json();
    assert_eq!(credited["data"]["inviter_openid"], inviter.as_str());
    assert_eq!(credited["data"]["invitee_openid"], friend.as_str());
    assert_eq!(credited["data"]["campaign_id"], campaign);
    assert_eq!(credited["data"]["scene"], scene.to_string());
    let revoked = of_type(&got, "referral.revoked")[0].json();
    assert_eq!(
        revoked["data"]["referral_id"],
        credited["data"]["referral_id"]
    );
    assert_eq!(revoked["data"]["inviter_openid"], inviter.as_str());
    let reward = of_type(&got, "reward.granted")[0].json();
    assert_eq!(reward["data"]["openid"], inviter.as_str());
    assert_eq!(reward["data"]["tier_id"], tier.id);
    assert_eq!(reward["data"]["tier"], "贴纸");
    let scanned = of_type(&got, "code.scanned")[0].json();
    assert_eq!(scanned["data"]["openid"], friend.as_str());
    assert_eq!(scanned["data"]["event"], "subscribe");
    assert_eq!(scanned["data"]["owner_openid"], inviter.as_str());
    assert_eq!(
        types_about(&got, &friend),
        ["code.scanned", "referral.credited", "referral.revoked"]
    );

    // Deleted, it gets nothing more (and the API says so for an unknown one).
    let id = listed[0]["id"].as_i64().unwrap();
    let delete = |id: i64| {
        app.http
            .delete(format!("{}/api/v1/webhooks/{id}", app.address))
            .bearer_auth(crate::helpers::ADMIN_TOKEN)
            .send()
    };
    assert_eq!(delete(id).await.unwrap().status(), 204);
    assert_eq!(delete(id).await.unwrap().status(), 404);
    let listed: Vec<Value> = app.api_get("/api/v1/webhooks").await.json().await.unwrap();
    assert!(listed.is_empty());
}

#[tokio::test]
async fn a_receiver_that_fails_three_times_then_recovers_gets_every_event_once_in_order() {
    let wechat = FakeWechat::start(100_000, None).await;
    let app = TestApp::spawn(&allowing_private(&wechat)).await;
    campaign_from_the_past(&app).await;
    let receiver = Receiver::start(3).await;
    let events = ["code.scanned", "referral.credited", "referral.revoked"];
    assert_eq!(register(&app, &receiver.url, SECRET, &events).await.0, 201);

    let inviter = openid("orderinv", 1);
    let scene = app.issue_code(&inviter).await["scene_id"].as_i64().unwrap();
    let friends: Vec<String> = (0..3).map(|i| openid("orderfriend", i)).collect();
    let t = Utc::now().timestamp() - 600;
    for (i, friend) in friends.iter().enumerate() {
        let at = t + i as i64 * 10;
        assert_eq!(app.subscribe(friend, Some(scene), at).await.status(), 200);
        assert_eq!(app.scan(friend, scene, at + 1).await.status(), 200);
        assert_eq!(app.unsubscribe(friend, at + 2).await.status(), 200);
    }
    let expected = friends.len() * 4;
    let got = receiver.wait_for(60, |got| got.len() >= expected).await;
    assert_eq!(got.len(), expected, "{got:#?}");
    let mut ids: Vec<String> = got.iter().map(|g| g.json()["id"].to_string()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), expected, "every event exactly once");
    for friend in &friends {
        assert_eq!(
            types_about(&got, friend),
            [
                "code.scanned",
                "referral.credited",
                "code.scanned",
                "referral.revoked"
            ],
            "{friend}'s events in order"
        );
    }
    assert_eq!(receiver.all().len(), expected + 3, "three refused attempts");
    // The log shows the retried deliveries with the receiver's answer.
    let retried: Vec<(i32, Option<i32>, String)> = sqlx::query_as(
        "SELECT attempts, last_status, status FROM webhook_deliveries WHERE attempts > 1",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert!(!retried.is_empty());
    assert!(retried
        .iter()
        .all(|(_, code, status)| *code == Some(204) && status == "delivered"));
}

#[tokio::test]
async fn private_and_loopback_targets_are_refused_without_the_setting() {
    let wechat = FakeWechat::start(100_000, None).await;
    let app = TestApp::spawn(&Deployment::new(&wechat)).await;
    let receiver = Receiver::start(0).await;
    let port = receiver
        .url
        .split(':')
        .nth(2)
        .unwrap()
        .split('/')
        .next()
        .unwrap();
    for url in [
        receiver.url.clone(),
        format!("http://localhost:{port}/hook"),
        "http://10.1.2.3/hook".to_string(),
        "http://169.254.169.254/latest".to_string(),
        "http://[::1]/hook".to_string(),
    ] {
        let (status, body) = register(&app, &url, SECRET, &["*"]).await;
        assert_eq!(status, 400, "{url}: {body}");
        assert!(
            body["error"]
                .as_str()
                .unwrap()
                .contains("FISSION_WEBHOOK_ALLOW_PRIVATE"),
            "{body}"
        );
    }
    for (url, secret, events, says) in [
        ("ftp://example.com/x", SECRET, vec!["*"], "http or https"),
        ("not a url", SECRET, vec!["*"], "not valid"),
        ("https://example.com/x", "", vec!["*"], "secret"),
        (
            "https://example.com/x",
            SECRET,
            vec!["referral.made_up"],
            "unknown event type",
        ),
        ("https://example.com/x", SECRET, vec![], "at least one"),
    ] {
        let (status, body) = register(&app, url, secret, &events).await;
        assert_eq!(status, 400, "{url} {events:?}: {body}");
        assert!(body["error"].as_str().unwrap().contains(says), "{body}");
    }

    // Endpoints that point inside the network by the time of delivery (written here straight
    // to the table, as a name re-pointed after registration would be) get nothing.
    for url in [
        receiver.url.clone(),
        format!("http://localhost:{port}/hook"),
    ] {
        let id = fission::db::webhooks::create(&app.pool, &url, SECRET, &["*".to_string()])
            .await
            .unwrap();
        assert!(
            fission::db::webhooks::emit_test(&app.pool, id, serde_json::json!({}))
                .await
                .unwrap()
        );
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let tried: Vec<Option<String>> = sqlx::query_scalar(
            "SELECT last_error FROM webhook_deliveries WHERE attempts > 0 AND status = 'pending'",
        )
        .fetch_all(&app.pool)
        .await
        .unwrap();
        if tried.len() == 2 && tried.iter().all(Option::is_some) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{tried:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(receiver.all().is_empty(), "{:?}", receiver.all());
}

#[tokio::test]
async fn the_dashboard_lists_endpoints_and_the_log_sends_a_test_event_and_replays_a_failure() {
    let wechat = FakeWechat::start(100_000, None).await;
    let app = TestApp::spawn(&with_admin(allowing_private(&wechat))).await;
    let receiver = Receiver::start(0).await;
    let mut operator = Operator::new(&app);
    operator.login().await;

    // Added through the form; a bad event type is refused with the reason on the page.
    let csrf = operator.csrf("/admin/webhooks").await;
    let refused = operator
        .post_form(
            "/admin/webhooks",
            &[
                ("csrf", &csrf),
                ("url", &receiver.url),
                ("secret", SECRET),
                ("events", "nope"),
            ],
        )
        .await;
    assert_eq!(refused.status(), 422);
    assert!(refused.text().await.unwrap().contains("unknown event type"));
    let added = operator
        .post_form(
            "/admin/webhooks",
            &[
                ("csrf", &csrf),
                ("url", &receiver.url),
                ("secret", SECRET),
                ("events", "referral.credited, code.scanned"),
            ],
        )
        .await;
    assert_eq!(added.status(), 303);
    let html = operator.get("/admin/webhooks").await.text().await.unwrap();
    assert!(html.contains(&receiver.url), "the endpoint is listed");
    assert!(html.contains("code.scanned, referral.credited"));
    let id: i64 = sqlx::query_scalar("SELECT id FROM webhooks")
        .fetch_one(&app.pool)
        .await
        .unwrap();

    // "Send test event" delivers, signed, and shows in the log.
    let csrf = csrf_in(&html).unwrap();
    let sent = operator
        .post_form(&format!("/admin/webhooks/{id}/test"), &[("csrf", &csrf)])
        .await;
    assert_eq!(sent.status(), 303);
    let got = receiver.wait_for(20, |got| !got.is_empty()).await;
    assert_eq!(got[0].event, "webhook.test");
    assert_eq!(
        got[0].signature,
        expected_signature(SECRET, &got[0].timestamp, &got[0].body)
    );
    let html = operator.get("/admin/webhooks").await.text().await.unwrap();
    assert!(html.contains("webhook.test"), "the log shows the delivery");
    assert!(html.contains("HTTP 204"));

    // A delivery that fails for good is replayed from the log, under the same event id.
    receiver.set_failing(true);
    let sent = operator
        .post_form(&format!("/admin/webhooks/{id}/test"), &[("csrf", &csrf)])
        .await;
    assert_eq!(sent.status(), 303);
    sqlx::query("UPDATE webhook_deliveries SET give_up_at = now() WHERE status = 'pending'")
        .execute(&app.pool)
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let failed: i64 = loop {
        let failed: Option<i64> =
            sqlx::query_scalar("SELECT id FROM webhook_deliveries WHERE status = 'failed'")
                .fetch_optional(&app.pool)
                .await
                .unwrap();
        if let Some(failed) = failed {
            break failed;
        }
        assert!(tokio::time::Instant::now() < deadline, "never failed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let refused_id = receiver.all().last().unwrap().json()["id"].clone();
    let html = operator.get("/admin/webhooks").await.text().await.unwrap();
    assert!(html.contains(&format!("/admin/webhooks/deliveries/{failed}/replay")));
    receiver.set_failing(false);
    let replayed = operator
        .post_form(
            &format!("/admin/webhooks/deliveries/{failed}/replay"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(replayed.status(), 303);
    let got = receiver.wait_for(20, |got| got.len() >= 2).await;
    assert_eq!(got[1].json()["id"], refused_id);
    // Only a failed delivery can be replayed.
    let again = operator
        .post_form(
            &format!("/admin/webhooks/deliveries/{failed}/replay"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(again.status(), 404);

    let deleted = operator
        .post_form(&format!("/admin/webhooks/{id}/delete"), &[("csrf", &csrf)])
        .await;
    assert_eq!(deleted.status(), 303);
    let html = operator.get("/admin/webhooks").await.text().await.unwrap();
    assert!(!html.contains(&receiver.url));
}
