//! Binding codes through the HTTP surface: created with a payload, completed once by the first
//! scan or follow through them (whatever the duplicates and however many instances), never
//! after expiry, and never crediting anyone.

use chrono::Utc;
use fission::wechat::outgoing::event;
use serde_json::{json, Value};

use crate::helpers::{openid, Deployment, FakeWechat, TestApp, ADMIN_TOKEN};
use crate::hook_receiver::{register, Receiver};

async fn create(app: &TestApp, body: Value) -> (u16, Value) {
    let response = app
        .http
        .post(format!("{}/api/v1/bindings", app.address))
        .bearer_auth(ADMIN_TOKEN)
        .json(&body)
        .send()
        .await
        .expect("api reachable");
    let status = response.status().as_u16();
    (status, response.json().await.expect("JSON"))
}

async fn get(app: &TestApp, id: &str) -> (u16, Value) {
    let response = app.api_get(&format!("/api/v1/bindings/{id}")).await;
    let status = response.status().as_u16();
    (status, response.json().await.expect("JSON"))
}

/// A SCAN of (or, `follow`, a subscribe through) the binding code with scene `scene`.
async fn through(app: &TestApp, who: &str, scene: &str, at: i64, follow: bool) -> u16 {
    let (kind, key) = if follow {
        ("subscribe", format!("qrscene_{scene}"))
    } else {
        ("SCAN", scene.to_string())
    };
    let push = event("gh_test", who, at, kind, Some(key), Some("TICKET".into()));
    app.push(&push).await.status().as_u16()
}

async fn completions(app: &TestApp) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM webhook_deliveries WHERE event_type = 'binding.completed'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_binding_completes_once_across_duplicate_pushes_and_two_instances() {
    let wechat = FakeWechat::start(100_000, None).await;
    let deployment = Deployment::new(&wechat)
        .set("FISSION_WEBHOOK_ALLOW_PRIVATE", "true")
        .set("DATABASE_MAX_CONNECTIONS", "24");
    let a = TestApp::spawn(&deployment).await;
    let b = TestApp::spawn(&deployment).await;
    let receiver = Receiver::start(0).await;
    assert_eq!(
        register(&a, &receiver.url, "s", &["binding.completed"])
            .await
            .0,
        201
    );

    let payload = json!({ "locker": "A-17", "session": { "id": 42, "tags": ["x", "y"] } });
    let (status, created) = create(&a, json!({ "payload": payload, "expire_seconds": 600 })).await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    let scene = created["scene_str"].as_str().unwrap().to_string();
    assert!(scene.starts_with("bind_"), "{scene}");
    for field in ["ticket", "url", "image_url", "expires_at"] {
        assert!(
            created[field].as_str().is_some_and(|v| !v.is_empty()),
            "{field}: {created}"
        );
    }
    let image = a
        .http
        .get(created["image_url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(image.status(), 200);
    let (status, pending) = get(&b, &id).await;
    assert_eq!(status, 200);
    assert_eq!(pending["status"], "pending");
    assert_eq!(pending["openid"], Value::Null);
    assert_eq!(pending["scene_str"], scene.as_str());

    // The same SCAN, several times to each instance at once, and later scans by others.
    let first = openid("binder", 1);
    let t = Utc::now().timestamp();
    let mut pushes = Vec::new();
    for i in 0..6 {
        let app = if i % 2 == 0 { &a } else { &b };
        pushes.push(through(app, &first, &scene, t, false));
    }
    for status in futures_util::future::join_all(pushes).await {
        assert_eq!(status, 200);
    }
    assert_eq!(
        through(&b, &openid("binder", 2), &scene, t + 5, false).await,
        200
    );
    assert_eq!(
        through(&a, &openid("binder", 3), &scene, t + 6, true).await,
        200
    );

    // Every push is recorded before its answer: the database is final now.
    assert_eq!(completions(&a).await, 1);
    let got = receiver.wait_for(20, |got| !got.is_empty()).await;
    let body = got[0].json();
    assert_eq!(got[0].event, "binding.completed");
    assert_eq!(body["data"]["binding_id"], id.as_str());
    assert_eq!(body["data"]["payload"], payload);
    assert_eq!(body["data"]["openid"], first.as_str());
    assert_eq!(body["data"]["event"], "SCAN");
    let (_, done) = get(&a, &id).await;
    assert_eq!(done["status"], "completed");
    assert_eq!(done["openid"], first.as_str());
    assert!(done["completed_at"].as_str().is_some());

    // More bindings completed through both instances: both delivery workers claim from the
    // same table, and every event reaches the receiver once.
    let mut scenes = Vec::new();
    for i in 0..8 {
        let (status, more) = create(&b, json!({ "payload": i, "expire_seconds": 600 })).await;
        assert_eq!(status, 201);
        scenes.push(more["scene_str"].as_str().unwrap().to_string());
    }
    let scans = scenes.iter().enumerate().map(|(i, scene)| {
        let app = if i % 2 == 0 { &a } else { &b };
        let who = openid("binder", 10 + i);
        async move { through(app, &who, scene, t + 10, false).await }
    });
    for status in futures_util::future::join_all(scans).await {
        assert_eq!(status, 200);
    }
    assert_eq!(completions(&a).await, 9);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let undelivered: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM webhook_deliveries WHERE status <> 'delivered'",
        )
        .fetch_one(&a.pool)
        .await
        .unwrap();
        if undelivered == 0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{undelivered} undelivered"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let all = receiver.all();
    assert_eq!(all.len(), 9, "{all:#?}");
    let mut ids: Vec<String> = all.iter().map(|g| g.json()["id"].to_string()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 9, "each event once");
}

#[tokio::test]
async fn a_follow_through_a_binding_completes_it_and_credits_nobody_and_expiry_ends_it() {
    let wechat = FakeWechat::start(100_000, None).await;
    let app = TestApp::spawn(&Deployment::new(&wechat)).await;
    sqlx::query("UPDATE campaigns SET starts_at = '2020-01-01' WHERE is_default")
        .execute(&app.pool)
        .await
        .unwrap();
    let (_, created) = create(&app, json!({ "payload": "table 7", "expire_seconds": 60 })).await;
    let scene = created["scene_str"].as_str().unwrap();
    let id = created["id"].as_str().unwrap();
    let follower = openid("bindfollow", 1);
    let t = Utc::now().timestamp();
    assert_eq!(through(&app, &follower, scene, t, true).await, 200);
    let (_, done) = get(&app, id).await;
    assert_eq!(done["status"], "completed");
    assert_eq!(done["openid"], follower.as_str());
    let referrals: i64 = sqlx::query_scalar("SELECT count(*) FROM referrals")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(referrals, 0, "a follow through a binding credits nobody");
    let outcome: String =
        sqlx::query_scalar("SELECT outcome FROM events WHERE openid = $1 AND event = 'subscribe'")
            .bind(&follower)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(outcome, "binding_follow", "not an unknown scene");
    let user: Value = app
        .api_get(&format!("/api/v1/users/{follower}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(user["subscribed"], true, "it is a plain follow");
    assert_eq!(user["invited_by"], Value::Null);

    // Past its expiry, a scan completes nothing.
    let (_, late) = create(&app, json!({ "payload": [1, 2], "expire_seconds": 60 })).await;
    let late_id = late["id"].as_str().unwrap();
    sqlx::query("UPDATE bindings SET expires_at = now() - interval '1 second' WHERE id = $1::uuid")
        .bind(late_id)
        .execute(&app.pool)
        .await
        .unwrap();
    let scanner = openid("bindlate", 1);
    let now = Utc::now().timestamp();
    assert_eq!(
        through(
            &app,
            &scanner,
            late["scene_str"].as_str().unwrap(),
            now,
            false
        )
        .await,
        200
    );
    let (_, expired) = get(&app, late_id).await;
    assert_eq!(expired["status"], "expired");
    assert_eq!(expired["openid"], Value::Null);
}

#[tokio::test]
async fn bad_binding_requests_are_refused_with_a_reason() {
    let wechat = FakeWechat::start(100_000, None).await;
    let app = TestApp::spawn(&Deployment::new(&wechat)).await;
    let big = "x".repeat(4100);
    for (body, says) in [
        (
            json!({ "payload": 1, "expire_seconds": 59 }),
            "expire_seconds",
        ),
        (
            json!({ "payload": 1, "expire_seconds": 2_592_001 }),
            "expire_seconds",
        ),
        (
            json!({ "payload": big, "expire_seconds": 600 }),
            "4096 bytes",
        ),
        (json!({ "expire_seconds": 600 }), "payload"),
    ] {
        let (status, answer) = create(&app, body).await;
        assert_eq!(status, 400, "{answer}");
        assert!(answer["error"].as_str().unwrap().contains(says), "{answer}");
    }
    let (ok, _) = create(
        &app,
        json!({ "payload": {"a": 1}, "expire_seconds": 2_592_000 }),
    )
    .await;
    assert_eq!(ok, 201);
    assert_eq!(get(&app, &uuid::Uuid::new_v4().to_string()).await.0, 404);
    assert_eq!(get(&app, "not-an-id").await.0, 404);
    let anonymous = app
        .http
        .get(format!(
            "{}/api/v1/bindings/{}",
            app.address,
            uuid::Uuid::new_v4()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
}
