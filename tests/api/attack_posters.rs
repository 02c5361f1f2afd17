//! Posters under pressure: a background too big to render, a burst of first poster requests,
//! a very long nickname.

use std::io::Cursor;

use fission::db;
use fission::domain::OpenId;
use futures_util::future::join_all;
use reqwest::header::COOKIE;

use crate::admin_client::{csrf_in, with_admin, Operator};
use crate::helpers::{openid, Deployment, FakeWechat, TestApp};
use crate::invite::sign_in;

async fn poster_renders(app: &TestApp) -> u64 {
    let metrics = reqwest::get(format!("{}/metrics", app.address))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    metrics
        .lines()
        .find(|l| l.starts_with("fission_poster_renders_total "))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0) as u64
}

#[tokio::test]
async fn a_background_too_big_to_render_is_refused_at_upload() {
    let wechat = FakeWechat::start(100_000, None).await;
    let app = TestApp::spawn(&with_admin(Deployment::new(&wechat))).await;
    let mut operator = Operator::new(&app);
    operator.login().await;
    let id: i64 = sqlx::query_scalar("SELECT id FROM campaigns ORDER BY id LIMIT 1")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let page = operator
        .get(&format!("/admin/campaigns/{id}"))
        .await
        .text()
        .await
        .unwrap();
    let csrf = csrf_in(&page).unwrap();
    let mut png = Vec::new();
    image::GrayImage::new(5000, 8000)
        .write_to(&mut Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    let form = reqwest::multipart::Form::new().text("csrf", csrf).part(
        "background",
        reqwest::multipart::Part::bytes(png).file_name("tall.png"),
    );
    let upload = operator
        .http
        .post(format!(
            "{}/admin/campaigns/{id}/poster-background",
            app.address
        ))
        .header(COOKIE, operator.cookie.clone().unwrap())
        .multipart(form)
        .send()
        .await
        .unwrap();
    let accepted = upload.status() == 303;
    assert!(accepted || upload.status() == 422, "{}", upload.status());
    // Whatever was accepted must still give every follower a poster.
    let alice = openid("bigbg", 1);
    wechat.sim.add_user(&alice, "阿丽", true);
    let client = sign_in(&app, &wechat, &alice, "snsapi_base").await;
    let poster = client
        .get(format!("{}/invite/poster.png", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(poster.status(), 200, "accepted at upload: {accepted}");
}

#[tokio::test]
async fn a_burst_of_first_poster_requests_renders_once() {
    let wechat = FakeWechat::start(100_000, None).await;
    let app = TestApp::spawn(&Deployment::new(&wechat)).await;
    let alice = openid("burst", 1);
    wechat.sim.add_user(&alice, "阿丽", true);
    let client = sign_in(&app, &wechat, &alice, "snsapi_base").await;
    // The code exists first, so only the poster is new.
    assert_eq!(
        client
            .get(format!("{}/invite/qrcode.png", app.address))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let requests = (0..30).map(|_| {
        let (client, url) = (client.clone(), format!("{}/invite/poster.png", app.address));
        async move { client.get(url).send().await.unwrap().status().as_u16() }
    });
    let statuses = join_all(requests).await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    assert_eq!(poster_renders(&app).await, 1);
}

#[tokio::test]
async fn a_very_long_nickname_is_cut_to_a_name() {
    let wechat = FakeWechat::start(100_000, None).await;
    let app = TestApp::spawn(&Deployment::new(&wechat)).await;
    let alice = openid("longname", 1);
    wechat.sim.add_user(&alice, &"长".repeat(5000), true);
    let client = sign_in(&app, &wechat, &alice, "snsapi_userinfo").await;
    let user = db::users::get(&app.pool, &OpenId::parse(&alice).unwrap())
        .await
        .unwrap()
        .unwrap();
    let stored = user.nickname.unwrap_or_default().chars().count();
    assert!((1..=64).contains(&stored), "{stored} characters stored");
    let poster = client
        .get(format!("{}/invite/poster.png", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(poster.status(), 200);
}
