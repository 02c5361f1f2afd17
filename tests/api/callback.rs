//! `/wechat/callback`: the URL check, plaintext and safe-mode pushes, retries, hostile input.

use chrono::Utc;
use fission::wechat::crypto::{signature, MessageCrypto};
use fission::wechat::message::{parse_encrypted_envelope, parse_push};
use fission::wechat::outgoing::{event, sign_push};

use crate::helpers::{openid, spawn_app, Deployment, FakeWechat, TestApp, AES_KEY, APPID, TOKEN};

async fn url_check(app: &TestApp, token: &str) -> reqwest::Response {
    let ts = Utc::now().timestamp().to_string();
    let sig = signature(&[token, &ts, "777"]);
    app.http
        .get(format!("{}/wechat/callback", app.address))
        .query(&[
            ("signature", sig.as_str()),
            ("timestamp", &ts),
            ("nonce", "777"),
            ("echostr", "hello-echo"),
        ])
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn url_check_echoes_only_with_a_good_signature() {
    let (app, _wechat) = spawn_app().await;
    let good = url_check(&app, TOKEN).await;
    assert_eq!(good.status(), 200);
    assert_eq!(good.text().await.unwrap(), "hello-echo");
    let bad = url_check(&app, "wrong-token").await;
    assert_eq!(bad.status(), 403);
    assert!(!bad.text().await.unwrap().contains("hello-echo"));
}

#[tokio::test]
async fn a_plaintext_push_is_recorded_before_success() {
    let (app, _wechat) = spawn_app().await;
    let response = app
        .subscribe(&openid("plain", 1), None, Utc::now().timestamp())
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "success");
    let (openid_in_db, event): (String, String) =
        sqlx::query_as("SELECT openid, event FROM events")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(openid_in_db, openid("plain", 1));
    assert_eq!(event, "subscribe");
}

#[tokio::test]
async fn bad_signatures_and_stale_timestamps_are_refused() {
    let (app, _wechat) = spawn_app().await;
    let push = event(
        "gh",
        &openid("sig", 1),
        Utc::now().timestamp(),
        "subscribe",
        None,
        None,
    );
    let now = Utc::now().timestamp();
    let forged = sign_push("not-the-token", None, &push, now, "1");
    let response = app
        .http
        .post(format!("{}/wechat/callback", app.address))
        .query(&forged.query)
        .body(forged.body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    // A correctly signed but replayed push from ten minutes ago.
    let stale = sign_push(TOKEN, None, &push, now - 600, "1");
    let response = app
        .http
        .post(format!("{}/wechat/callback", app.address))
        .query(&stale.query)
        .body(stale.body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    assert_eq!(app.events_count().await, 0);
}

#[tokio::test]
async fn the_same_push_four_times_at_once_is_recorded_once() {
    let (app, _wechat) = spawn_app().await;
    let push = event(
        "gh",
        &openid("retry", 1),
        Utc::now().timestamp(),
        "subscribe",
        None,
        None,
    );
    let responses = futures_util::future::join_all((0..4).map(|_| app.push(&push))).await;
    for r in responses {
        assert_eq!(r.status(), 200);
        assert_eq!(r.text().await.unwrap(), "success");
    }
    assert_eq!(app.events_count().await, 1);
    // And a later retry, after the first answer, too.
    assert_eq!(app.push(&push).await.status(), 200);
    assert_eq!(app.events_count().await, 1);
}

#[tokio::test]
async fn oversized_and_hostile_bodies_get_400_and_the_service_lives_on() {
    let (app, _wechat) = spawn_app().await;
    let ts = Utc::now().timestamp().to_string();
    let sig = signature(&[TOKEN, &ts, "9"]);
    let post = |body: String| {
        app.http
            .post(format!("{}/wechat/callback", app.address))
            .query(&[
                ("signature", sig.as_str()),
                ("timestamp", &ts),
                ("nonce", "9"),
            ])
            .body(body)
            .send()
    };
    let huge = format!("<xml><Content>{}</Content></xml>", "a".repeat(1 << 20));
    assert_eq!(post(huge).await.unwrap().status(), 400);

    let laughs = r#"<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<xml><ToUserName>a</ToUserName><FromUserName>&lol3;</FromUserName><CreateTime>1</CreateTime><MsgType>event</MsgType></xml>"#;
    assert_eq!(post(laughs.to_string()).await.unwrap().status(), 400);
    assert_eq!(
        post("not xml at all".to_string()).await.unwrap().status(),
        400
    );
    assert_eq!(
        post("<xml><ToUserName>a</ToUserName></xml>".to_string())
            .await
            .unwrap()
            .status(),
        400
    );

    let health = app
        .http
        .get(format!("{}/healthz", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(app.events_count().await, 0);
}

#[tokio::test]
async fn unknown_message_types_are_answered_success() {
    let (app, _wechat) = spawn_app().await;
    let mut push = event(
        "gh",
        &openid("loc", 1),
        Utc::now().timestamp(),
        "LOCATION",
        None,
        None,
    );
    assert_eq!(app.push(&push).await.text().await.unwrap(), "success");
    push.msg_type = "location".into();
    push.event = None;
    push.create_time += 1;
    assert_eq!(app.push(&push).await.text().await.unwrap(), "success");
    assert_eq!(app.events_count().await, 2);
}

async fn safe_mode_app() -> (TestApp, FakeWechat) {
    let wechat = FakeWechat::start(100_000, None).await;
    let app =
        TestApp::spawn(&Deployment::new(&wechat).set("WECHAT_ENCODING_AES_KEY", AES_KEY)).await;
    (app, wechat)
}

#[tokio::test]
async fn safe_mode_decrypts_pushes_and_encrypts_replies() {
    let (app, _wechat) = safe_mode_app().await;
    let inviter = openid("safeinv", 1);
    let code = app.issue_code(&inviter).await;
    let scene = code["scene_id"].as_i64().unwrap();
    let response = app
        .subscribe(&openid("safenew", 1), Some(scene), Utc::now().timestamp())
        .await;
    assert_eq!(response.status(), 200);
    let body = response.text().await.unwrap();
    // The passive reply is encrypted, signed, and names the inviter's greeting.
    let encrypt = parse_encrypted_envelope(body.as_bytes()).expect("encrypted reply");
    let crypto = MessageCrypto::new(AES_KEY, TOKEN, APPID).unwrap();
    let reply = crypto
        .decrypt(&encrypt)
        .expect("reply decrypts for our appid");
    assert!(reply.contains("欢迎关注"), "{reply}");
    assert!(reply.contains(&openid("safenew", 1)));
    assert_eq!(app.events_count().await, 1);
}

#[tokio::test]
async fn safe_mode_refuses_plaintext_bad_msg_signature_and_other_appids() {
    let (app, _wechat) = safe_mode_app().await;
    let now = Utc::now().timestamp();
    let push = event("gh", &openid("strict", 1), now, "subscribe", None, None);
    let send = |query: Vec<(&'static str, String)>, body: String| {
        app.http
            .post(format!("{}/wechat/callback", app.address))
            .query(&query)
            .body(body)
            .send()
    };

    // Plaintext (no encrypt_type) with a valid signature: not covered by any signature in safe mode.
    let plain = sign_push(TOKEN, None, &push, now, "5");
    assert_eq!(send(plain.query, plain.body).await.unwrap().status(), 403);

    // Encrypted, but msg_signature does not match the ciphertext.
    let crypto = MessageCrypto::new(AES_KEY, TOKEN, APPID).unwrap();
    let mut tampered = sign_push(TOKEN, Some(&crypto), &push, now, "5");
    for (k, v) in tampered.query.iter_mut() {
        if *k == "msg_signature" {
            *v = "0".repeat(40);
        }
    }
    assert_eq!(
        send(tampered.query, tampered.body).await.unwrap().status(),
        403
    );

    // Encrypted with the right key for another account.
    let other = MessageCrypto::new(AES_KEY, TOKEN, "wxsomeoneelse0000").unwrap();
    let foreign = sign_push(TOKEN, Some(&other), &push, now, "5");
    assert_eq!(
        send(foreign.query, foreign.body).await.unwrap().status(),
        400
    );

    assert_eq!(app.events_count().await, 0);
    // The genuine article goes through.
    let good = sign_push(TOKEN, Some(&crypto), &push, now, "5");
    assert_eq!(send(good.query, good.body).await.unwrap().status(), 200);
    assert_eq!(app.events_count().await, 1);
    let stored: String = sqlx::query_scalar("SELECT openid FROM events")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(
        parse_push(fission::wechat::message::push_xml(&push).as_bytes())
            .unwrap()
            .from_user,
        stored
    );
}
