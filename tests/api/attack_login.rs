//! The login limit under a burst: wrong passwords sent all at once are counted before any is
//! checked, so no more than the limit are ever verified (each check costs ~19 MiB of argon2
//! memory; bench/login_rss.sh measures what a burst costs the process).

use futures_util::future::join_all;
use reqwest::header::COOKIE;

use crate::admin_client::{with_admin, Operator, ADMIN_PASSWORD};
use crate::helpers::{Deployment, FakeWechat, TestApp};

#[tokio::test]
async fn a_burst_of_wrong_passwords_gets_at_most_five_checked() {
    let wechat = FakeWechat::start(100_000, None).await;
    let app = TestApp::spawn(&with_admin(Deployment::new(&wechat))).await;
    let mut operator = Operator::new(&app);
    let csrf = operator.csrf("/admin/login").await;
    let cookie = operator.cookie.clone().expect("session cookie");
    let attempts = (0..250).map(|i| {
        let (http, cookie, csrf) = (operator.http.clone(), cookie.clone(), csrf.clone());
        let url = format!("{}/admin/login", app.address);
        async move {
            http.post(url)
                .header(COOKIE, cookie)
                .form(&[
                    ("csrf", csrf.as_str()),
                    ("username", "admin"),
                    ("password", &format!("guess {i}")),
                ])
                .send()
                .await
                .expect("login reachable")
                .status()
                .as_u16()
        }
    });
    let statuses = join_all(attempts).await;
    let checked = statuses.iter().filter(|s| **s == 401).count();
    let refused = statuses.iter().filter(|s| matches!(**s, 429 | 503)).count();
    assert!(checked <= 5, "{checked} wrong passwords were checked");
    assert_eq!(checked + refused, statuses.len(), "{statuses:?}");
    let metrics = reqwest::get(format!("{}/metrics", app.address))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let verified = metrics
        .lines()
        .find_map(|l| l.strip_prefix("fission_password_checks_total "))
        .and_then(|v| v.trim().parse::<f64>().ok());
    assert!(verified.is_some_and(|v| v <= 5.0), "verified {verified:?}");
    // The account is locked now, for the right password too.
    assert_eq!(
        operator.login_with("admin", ADMIN_PASSWORD).await.status(),
        429
    );
}

#[tokio::test]
async fn a_right_password_does_not_count_as_a_failure() {
    let wechat = FakeWechat::start(100_000, None).await;
    let app = TestApp::spawn(&with_admin(Deployment::new(&wechat))).await;
    for _ in 0..8 {
        let mut operator = Operator::new(&app);
        operator.login().await;
    }
}
