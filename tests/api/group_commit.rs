//! Group commit keeps the one-push-at-a-time answers: a duplicate is answered only after the
//! original is durable, and a push the database refuses fails alone, not its batch-mates.

use chrono::{DateTime, Utc};
use futures_util::future::join_all;
use futures_util::stream::{FuturesUnordered, StreamExt};

use crate::helpers::{openid, Deployment, FakeWechat, TestApp};
use fission::push::{BatchLimits, Incoming, Outcome, PushQueue};
use fission::wechat::outgoing::event;

/// The same subscribe, eight times at once on two instances: one credit, one welcome, seven
/// plain `success` answers — and whichever answer comes first, the credit is already there.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_duplicate_is_answered_only_after_its_original_commits() {
    let wechat = FakeWechat::start(100_000, None).await;
    let deployment = Deployment::new(&wechat);
    let a = TestApp::spawn(&deployment).await;
    let b = TestApp::spawn(&deployment).await;
    let inviter = openid("dupinviter", 1);
    let scene = a.issue_code(&inviter).await["scene_id"].as_i64().unwrap();
    let friend = openid("dupfriend", 1);
    let at = Utc::now().timestamp();

    let mut answers: FuturesUnordered<_> = (0..8)
        .map(|n| {
            let app = if n % 2 == 0 { &a } else { &b };
            let friend = friend.clone();
            async move { app.subscribe(&friend, Some(scene), at).await }
        })
        .collect();
    let mut welcomes = 0;
    let mut plain = 0;
    while let Some(response) = answers.next().await {
        assert_eq!(response.status(), 200);
        let body = response.text().await.unwrap();
        // Checked the moment the answer arrives: the credit must be durable already.
        let credits: i64 =
            sqlx::query_scalar("SELECT count(*) FROM referrals WHERE invitee_openid = $1")
                .bind(&friend)
                .fetch_one(&a.pool)
                .await
                .unwrap();
        assert_eq!(
            credits, 1,
            "answered {body:?} before the credit was committed"
        );
        if body.contains("欢迎关注") {
            welcomes += 1;
        } else {
            assert_eq!(body, "success");
            plain += 1;
        }
    }
    assert_eq!((welcomes, plain), (1, 7));
    assert_eq!(a.events_count().await, 1, "one event recorded");
}

fn incoming(app: &TestApp, openid: &str, at: i64, key: Option<String>) -> Incoming {
    let push = event("gh_test", openid, at, "subscribe", key, None);
    Incoming::from_push(&push, &app.app_state.settings).unwrap()
}

/// A push the database refuses (an EventKey PostgreSQL cannot store) gets an error; the pushes
/// batched with it are applied and answered as if it had never been there.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_bad_push_does_not_fail_its_batch_mates() {
    let wechat = FakeWechat::start(100_000, None).await;
    let app = TestApp::spawn(&Deployment::new(&wechat)).await;
    let inviter = openid("bminviter", 1);
    let scene = app.issue_code(&inviter).await["scene_id"].as_i64().unwrap();
    let metrics = fission::telemetry::Metrics::new();
    let queue = PushQueue::start(
        app.pool.clone(),
        BatchLimits {
            max: 64,
            wait: std::time::Duration::from_millis(20),
            writers: 1,
            notice_delay: std::time::Duration::ZERO,
        },
        std::sync::Arc::new(tokio::sync::Notify::new()),
        metrics.clone(),
    );
    let at = Utc::now().timestamp();
    let mut pushes: Vec<Incoming> = (0..20)
        .map(|n| {
            incoming(
                &app,
                &openid("bmfriend", n),
                at,
                Some(format!("qrscene_{scene}")),
            )
        })
        .collect();
    // A NUL byte: valid in the push, refused by PostgreSQL's text type.
    pushes.insert(
        10,
        incoming(&app, &openid("bmbad", 1), at, Some("bad\0key".into())),
    );
    let results = join_all(pushes.into_iter().map(|p| queue.submit(p))).await;

    for (n, result) in results.iter().enumerate() {
        match n {
            10 => assert!(result.is_err(), "the bad push is refused: {result:?}"),
            _ => assert_eq!(
                result.as_ref().map(|d| d.outcome).ok(),
                Some(Outcome::Credited),
                "push {n}: {result:?}"
            ),
        }
    }
    let credits: i64 =
        sqlx::query_scalar("SELECT count(*) FROM referrals WHERE inviter_openid = $1")
            .bind(&inviter)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(credits, 20);
    let stats: (i32, DateTime<Utc>) =
        sqlx::query_as("SELECT invites, reached_at FROM inviter_stats WHERE openid = $1")
            .bind(&inviter)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(stats.0, 20);
    // The pushes did share batches (the bad one was not alone from the start).
    let batches = metrics.push_batch.get_sample_count();
    assert!(
        metrics.push_batch.get_sample_sum() > batches as f64,
        "{batches} batches for 21 pushes"
    );
}
