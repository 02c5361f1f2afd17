//! Invite codes: lazy, race-free issuance, the permanent quota, renewal, and the stored image.

use std::collections::HashSet;

use chrono::{Duration, Utc};
use futures_util::future::join_all;

use crate::helpers::{openid, spawn_app, Deployment, FakeWechat, TestApp, ADMIN_TOKEN};

#[tokio::test]
async fn fifty_concurrent_first_requests_make_one_code() {
    let (app, wechat) = spawn_app().await;
    let user = openid("race", 1);
    let codes = join_all((0..50).map(|_| app.issue_code(&user))).await;
    let tickets: HashSet<_> = codes
        .iter()
        .map(|c| c["ticket"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(tickets.len(), 1);
    assert_eq!(wechat.sim.calls("qrcode/create"), 1);
    assert_eq!(codes[0]["kind"], "permanent");
    let requests = wechat.sim.qrcode_requests();
    assert_eq!(requests[0]["action_name"], "QR_LIMIT_SCENE");
    assert_eq!(
        requests[0]["action_info"]["scene"]["scene_id"],
        codes[0]["scene_id"]
    );
}

#[tokio::test]
async fn a_thousand_users_at_once_get_distinct_scenes() {
    let (app, wechat) = spawn_app().await;
    let users: Vec<String> = (0..1000).map(|i| openid("many", i)).collect();
    let mut codes = Vec::new();
    // 1,000 requests in flight at once, in waves the HTTP client can hold open.
    for wave in users.chunks(250) {
        codes.extend(join_all(wave.iter().map(|u| app.issue_code(u))).await);
    }
    let scenes: HashSet<i64> = codes
        .iter()
        .map(|c| c["scene_id"].as_i64().unwrap())
        .collect();
    assert_eq!(scenes.len(), 1000);
    assert!(scenes.iter().all(|s| (1..=100_000).contains(s)));
    assert_eq!(wechat.sim.calls("qrcode/create"), 1000);
    // Asking again calls WeChat no more.
    join_all(users.iter().take(100).map(|u| app.issue_code(u))).await;
    assert_eq!(wechat.sim.calls("qrcode/create"), 1000);
}

#[tokio::test]
async fn past_the_permanent_quota_followers_get_working_temporary_codes() {
    let wechat = FakeWechat::start(10, None).await;
    let app = TestApp::spawn(&Deployment::new(&wechat)).await;
    for i in 0..10 {
        assert_eq!(
            app.issue_code(&openid("quota", i)).await["kind"],
            "permanent"
        );
    }
    let eleventh = app.issue_code(&openid("quota", 10)).await;
    assert_eq!(eleventh["kind"], "temporary");
    let expires: chrono::DateTime<Utc> = eleventh["expires_at"].as_str().unwrap().parse().unwrap();
    assert!(expires > Utc::now() + Duration::days(29), "{expires}");
    let last = wechat.sim.qrcode_requests().pop().unwrap();
    assert_eq!(last["action_name"], "QR_SCENE");
    assert_eq!(last["expire_seconds"], 2_592_000);
    // The switch is remembered: the twelfth goes straight to a temporary code.
    let before = wechat.sim.calls("qrcode/create");
    assert_eq!(
        app.issue_code(&openid("quota", 11)).await["kind"],
        "temporary"
    );
    assert_eq!(wechat.sim.calls("qrcode/create"), before + 1);

    // The temporary code works: a friend following through it credits its owner.
    let scene = eleventh["scene_id"].as_i64().unwrap();
    app.subscribe(
        &openid("quotafriend", 1),
        Some(scene),
        Utc::now().timestamp(),
    )
    .await;
    let board: serde_json::Value = app
        .api_get("/api/v1/leaderboard")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(board[0]["openid"], openid("quota", 10));
    assert_eq!(board[0]["invites"], 1);
}

#[tokio::test]
async fn a_temporary_code_near_expiry_is_renewed_with_the_same_scene() {
    let wechat = FakeWechat::start(0, None).await;
    let app = TestApp::spawn(&Deployment::new(&wechat)).await;
    let owner = openid("renew", 1);
    let first = app.issue_code(&owner).await;
    assert_eq!(first["kind"], "temporary");
    sqlx::query("UPDATE invite_codes SET expires_at = now() + interval '1 hour'")
        .execute(&app.pool)
        .await
        .unwrap();
    let renewed = fission::referral::codes::renew_expiring(&app.app_state)
        .await
        .unwrap();
    assert_eq!(renewed, 1);
    let second = app.issue_code(&owner).await;
    assert_eq!(second["scene_id"], first["scene_id"]);
    assert_ne!(second["ticket"], first["ticket"]);
    let expires: chrono::DateTime<Utc> = second["expires_at"].as_str().unwrap().parse().unwrap();
    assert!(expires > Utc::now() + Duration::days(29));
    // One refused permanent attempt (45029), the first temporary code, the renewal.
    assert_eq!(wechat.sim.calls("qrcode/create"), 3);
    assert_eq!(wechat.sim.qrcode_requests().len(), 2);
}

#[tokio::test]
async fn the_code_image_is_stored_cached_and_decodes_to_the_ticket_url() {
    let (app, wechat) = spawn_app().await;
    let code = app.issue_code(&openid("img", 1)).await;
    let response = app
        .http
        .get(code["image_url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "image/png");
    assert!(response.headers()["cache-control"]
        .to_str()
        .unwrap()
        .contains("immutable"));
    let png = response.bytes().await.unwrap();
    let image = image::load_from_memory(&png).unwrap().to_luma8();
    let mut prepared = rqrr::PreparedImage::prepare(image);
    let grids = prepared.detect_grids();
    assert_eq!(grids.len(), 1);
    let (_, content) = grids[0].decode().unwrap();
    assert_eq!(content, code["url"].as_str().unwrap());
    // The same image is what showqrcode serves for this ticket (encoded exactly once).
    let official = app
        .http
        .get(
            app.app_state
                .wechat
                .showqrcode_url(code["ticket"].as_str().unwrap()),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(official.status(), 200);
    assert_eq!(wechat.sim.calls("showqrcode"), 1);
}

#[tokio::test]
async fn the_api_needs_the_bearer_token() {
    let (app, _wechat) = spawn_app().await;
    for path in [
        "/api/v1/leaderboard",
        "/api/v1/users/oX",
        "/admin/export/referrals.csv",
    ] {
        let anonymous = app
            .http
            .get(format!("{}{path}", app.address))
            .send()
            .await
            .unwrap();
        assert_eq!(anonymous.status(), 401, "{path}");
        let wrong = app
            .http
            .get(format!("{}{path}", app.address))
            .bearer_auth("nope")
            .send()
            .await
            .unwrap();
        assert_eq!(wrong.status(), 401, "{path}");
    }
    let post = app
        .http
        .post(format!("{}/api/v1/users/oX/invite-code", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), 401);
    let unknown = app.api_get("/api/v1/users/oNobodyKnowsMe").await;
    assert_eq!(unknown.status(), 404);
    let body: serde_json::Value = unknown.json().await.unwrap();
    assert!(body["error"].is_string());
    let bad = app
        .http
        .post(format!(
            "{}/api/v1/users/not%20an%20openid/invite-code",
            app.address
        ))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
}

#[tokio::test]
async fn channel_codes_count_scans_and_follows_and_credit_no_one() {
    let (app, wechat) = spawn_app().await;
    let created = app
        .http
        .post(format!("{}/api/v1/channels", app.address))
        .bearer_auth(ADMIN_TOKEN)
        .json(&serde_json::json!({ "name": "门店 A" }))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let code: serde_json::Value = created.json().await.unwrap();
    assert_eq!(code["kind"], "permanent");
    let scene = code["scene_str"].as_str().unwrap().to_string();
    assert_eq!(
        wechat.sim.qrcode_requests()[0]["action_name"],
        "QR_LIMIT_STR_SCENE"
    );

    let now = Utc::now().timestamp();
    let follow = fission::wechat::outgoing::event(
        "gh",
        &openid("chan", 1),
        now,
        "subscribe",
        Some(format!("qrscene_{scene}")),
        None,
    );
    assert_eq!(app.push(&follow).await.status(), 200);
    let scan = fission::wechat::outgoing::event(
        "gh",
        &openid("chan", 2),
        now,
        "SCAN",
        Some(scene.clone()),
        None,
    );
    assert_eq!(app.push(&scan).await.status(), 200);

    let channels: serde_json::Value = app.api_get("/api/v1/channels").await.json().await.unwrap();
    assert_eq!(channels[0]["name"], "门店 A");
    assert_eq!(channels[0]["follows"], 1);
    assert_eq!(channels[0]["scans"], 1);
    let board: serde_json::Value = app
        .api_get("/api/v1/leaderboard")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        board.as_array().unwrap().len(),
        0,
        "a channel is nobody's referral"
    );

    let duplicate = app
        .http
        .post(format!("{}/api/v1/channels", app.address))
        .bearer_auth(ADMIN_TOKEN)
        .json(&serde_json::json!({ "name": "门店 A" }))
        .send()
        .await
        .unwrap();
    assert_eq!(duplicate.status(), 409);
}
