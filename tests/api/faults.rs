//! Faults the service must survive: a slow WeChat.

use std::time::{Duration, Instant};

use futures_util::future::join_all;
use reqwest::StatusCode;

use crate::helpers::{openid, spawn_app, TestApp};
use crate::invite::sign_in;

/// WeChat gives up on a push that is not answered within 5 s.
const WECHAT_DEADLINE: Duration = Duration::from_secs(5);

/// Polls `done` until it holds, failing the test after `within`.
async fn wait_until<F, Fut>(within: Duration, what: &str, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    while !done().await {
        assert!(Instant::now() < deadline, "gave up waiting: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Posts `n` subscribes of new followers at once, each given WeChat's 5 s; returns how many
/// were answered `success` in time.
async fn pushes_answered_in_time(app: &TestApp, tag: &str, n: usize) -> usize {
    let now = chrono::Utc::now().timestamp();
    let answers = join_all((0..n).map(|i| {
        let user = openid(tag, i);
        async move {
            let answer = tokio::time::timeout(WECHAT_DEADLINE, async {
                let response = app.subscribe(&user, None, now).await;
                (response.status(), response.text().await.unwrap_or_default())
            })
            .await;
            matches!(answer, Ok((StatusCode::OK, _)))
        }
    }))
    .await;
    answers.into_iter().filter(|ok| *ok).count()
}

#[tokio::test]
async fn a_slow_wechat_does_not_starve_the_callback() {
    let (app, wechat) = spawn_app().await;
    // Fifty followers, signed in to their invite page, none with a code yet.
    let users: Vec<String> = (0..50).map(|i| openid("slowpage", i)).collect();
    let now = chrono::Utc::now().timestamp();
    for user in &users {
        wechat.sim.add_user(user, user, true);
        assert_eq!(app.subscribe(user, None, now).await.status(), 200);
    }
    let clients = join_all(
        users
            .iter()
            .map(|user| sign_in(&app, &wechat, user, "snsapi_base")),
    )
    .await;
    // The token is cached, so what is slow below is qrcode/create itself.
    app.issue_code(&openid("slowwarm", 0)).await;
    let created_before = wechat.sim.calls("qrcode/create");

    wechat.sim.set_latency(Duration::from_secs(10));
    let visits: Vec<_> = clients
        .into_iter()
        .map(|client| {
            let url = format!("{}/invite", app.address);
            tokio::spawn(async move { client.get(url).send().await.map(|r| r.status()) })
        })
        .collect();
    // The page visits are waiting on WeChat (as many as the pool has connections, at least).
    wait_until(Duration::from_secs(10), "visits reach WeChat", || async {
        wechat.sim.calls("qrcode/create") >= created_before + 12
    })
    .await;

    let answered = pushes_answered_in_time(&app, "slowpush", 200).await;
    assert_eq!(
        answered, 200,
        "pushes answered within 5 s while WeChat is slow"
    );
    let recorded: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE openid LIKE 'oslowpush%' AND event = 'subscribe'",
    )
    .fetch_one(&app.pool)
    .await
    .expect("count");
    assert_eq!(recorded, 200);

    // The visits end one way or the other (a slow WeChat may time them out); none hangs.
    wechat.sim.set_latency(Duration::ZERO);
    for visit in visits {
        let status = tokio::time::timeout(Duration::from_secs(60), visit)
            .await
            .expect("the page answers")
            .expect("the visit task")
            .expect("the page is reachable");
        assert!(
            status == StatusCode::OK || status == StatusCode::SERVICE_UNAVAILABLE,
            "{status}"
        );
    }
}
