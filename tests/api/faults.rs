//! Faults the service must survive: a slow WeChat, WeChat refusing everything. (Redis and
//! PostgreSQL going away are in `redis_outage.rs` and `bench/postgres-restart.sh`.)

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
/// were answered in time, and the slowest answer.
async fn pushes_answered_in_time(app: &TestApp, tag: &str, n: usize) -> (usize, Duration) {
    let now = chrono::Utc::now().timestamp();
    let answers = join_all((0..n).map(|i| {
        let user = openid(tag, i);
        async move {
            let sent = Instant::now();
            let answer = tokio::time::timeout(WECHAT_DEADLINE, async {
                let response = app.subscribe(&user, None, now).await;
                (response.status(), response.text().await.unwrap_or_default())
            })
            .await;
            (matches!(answer, Ok((StatusCode::OK, _))), sent.elapsed())
        }
    }))
    .await;
    let answered = answers.iter().filter(|(ok, _)| *ok).count();
    let slowest = answers
        .iter()
        .map(|(_, took)| *took)
        .max()
        .unwrap_or_default();
    (answered, slowest)
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
        .iter()
        .cloned()
        .map(|client| {
            let url = format!("{}/invite", app.address);
            tokio::spawn(async move {
                let response = client.get(url).send().await?;
                Ok::<_, reqwest::Error>((response.status(), response.text().await?))
            })
        })
        .collect();
    // The page visits are waiting on WeChat (as many as the pool has connections, at least).
    wait_until(Duration::from_secs(10), "visits reach WeChat", || async {
        wechat.sim.calls("qrcode/create") >= created_before + 12
    })
    .await;

    let (answered, slowest) = pushes_answered_in_time(&app, "slowpush", 200).await;
    eprintln!("slow WeChat: {answered} of 200 pushes answered within 5 s, slowest {slowest:?}");
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

    // The visits are not held for WeChat's 10 s: the page asks the follower to come back (or
    // shows the code, for a visit that reached WeChat after it recovered).
    wechat.sim.set_latency(Duration::ZERO);
    for visit in visits {
        let (status, body) = tokio::time::timeout(Duration::from_secs(60), visit)
            .await
            .expect("the page answers")
            .expect("the visit task")
            .expect("the page is reachable");
        assert!(
            status == StatusCode::OK
                || (status == StatusCode::SERVICE_UNAVAILABLE && body.contains("邀请码")),
            "{status}: {body}"
        );
    }
    // Coming back, every follower finds their code, and only one code each was stored.
    for client in &clients {
        let url = format!("{}/invite", app.address);
        wait_until(
            Duration::from_secs(30),
            "the code after WeChat recovers",
            || {
                let (client, url) = (client.clone(), url.clone());
                async move {
                    client
                        .get(url)
                        .send()
                        .await
                        .is_ok_and(|r| r.status() == StatusCode::OK)
                }
            },
        )
        .await;
    }
    let codes: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM invite_codes WHERE owner_openid LIKE 'oslowpage%'",
    )
    .fetch_one(&app.pool)
    .await
    .expect("count");
    assert_eq!(codes, 50);
}

#[tokio::test]
async fn wechat_refusing_everything_degrades_pages_pauses_the_outbox_and_spares_the_token() {
    let (app, wechat) = spawn_app().await;
    let now = chrono::Utc::now().timestamp();
    let visitors: Vec<String> = (0..4).map(|i| openid("stormpage", i)).collect();
    for user in &visitors {
        wechat.sim.add_user(user, user, true);
        assert_eq!(app.subscribe(user, None, now).await.status(), 200);
    }
    let mut pages = Vec::new();
    for user in &visitors {
        pages.push(sign_in(&app, &wechat, user, "snsapi_base").await);
    }
    // Forty inviters with codes (and a token cached) before the storms. Each has written to
    // the account, so a customer-service message may reach them.
    wechat
        .sim
        .set_callback(&format!("{}/wechat/callback", app.address));
    let mut scenes = Vec::new();
    for i in 0..40 {
        let inviter = openid("storminviter", i);
        wechat.sim.add_user(&inviter, &inviter, true);
        assert_eq!(
            wechat.sim.send_text(&inviter, "你好").await.unwrap().status,
            200
        );
        scenes.push(app.issue_code(&inviter).await["scene_id"].as_i64().unwrap());
    }
    let page_text = |client: reqwest::Client| {
        let url = format!("{}/invite", app.address);
        async move {
            let response = client.get(url).send().await.expect("page reachable");
            (response.status(), response.text().await.expect("body"))
        }
    };

    // Busy, then quota spent: the page says what is going on, nothing crashes.
    for (errcode, client) in [(-1, &pages[0]), (45009, &pages[1])] {
        wechat.sim.fail_next("qrcode/create", errcode, 1_000);
        let (status, body) = page_text(client.clone()).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{errcode}: {body}");
        assert!(body.contains("邀请码暂时生成不了"), "{errcode}: {body}");
    }

    // 40001 for every call, whatever the token: the token is replaced once, not per call.
    wechat.sim.fail_next("qrcode/create", 40001, 1_000);
    let tokens_before = wechat.sim.calls("stable_token");
    for _ in 0..5 {
        for client in &pages[2..] {
            let (status, body) = page_text(client.clone()).await;
            assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        }
    }
    let refreshes = wechat.sim.calls("stable_token") - tokens_before;
    assert!(
        refreshes <= 2,
        "{refreshes} token fetches for 10 page visits"
    );
    wechat.sim.fail_next("qrcode/create", 0, 0);

    // Messages to inviters while WeChat is busy: the outbox backs off instead of trying every
    // job; the pushes that queue them are answered as usual.
    wechat.sim.fail_next("message/custom/send", -1, 1_000_000);
    let credits = join_all(
        scenes
            .iter()
            .enumerate()
            .map(|(i, scene)| app.subscribe_owned(openid("stormfriend", i), *scene, now + 1)),
    )
    .await;
    assert!(credits.iter().all(|r| r.status() == 200));
    wait_until(
        Duration::from_secs(30),
        "the outbox tries WeChat",
        || async { wechat.sim.calls("message/custom/send") > 0 },
    )
    .await;
    // The storm lasts a while; without backing off, 40 jobs with three busy retries each
    // would make 160 calls in their first attempt alone (124 in these 6 s before the pause).
    tokio::time::sleep(Duration::from_secs(6)).await;
    let during = wechat.sim.calls("message/custom/send");
    eprintln!("WeChat storms: {refreshes} token fetches for 10 visits under 40001, {during} custom/send calls in 6 s of -1");
    assert!(
        during <= 6 * 4,
        "{during} calls while WeChat answered -1 to every one"
    );
    wechat.sim.fail_next("message/custom/send", 0, 0);
    wait_until(Duration::from_secs(60), "every inviter is told", || async {
        (0..40).all(|i| !wechat.sim.inbox(&openid("storminviter", i)).is_empty())
    })
    .await;
}
