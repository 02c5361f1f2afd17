//! A follower's page and the dashboard in one browser: signing in to one must not sign the
//! other out (they keep separate cookies).

use fantoccini::Locator;

use crate::admin_client::{with_admin, ADMIN_PASSWORD};
use crate::browser::Browser;
use crate::helpers::{Deployment, TestApp};
use crate::invite_page::{create_follower, sign_in_as, wait_for_text};

/// Signs the built-in admin in on the dashboard's login page (the browser keeps the cookie).
pub async fn admin_sign_in(browser: &Browser, app: &TestApp) {
    let c = &browser.client;
    c.goto(&format!("{}/admin/login", app.address))
        .await
        .unwrap();
    for (name, value) in [("username", "admin"), ("password", ADMIN_PASSWORD)] {
        c.find(Locator::Css(&format!("[name=\"{name}\"]")))
            .await
            .unwrap()
            .send_keys(value)
            .await
            .unwrap();
    }
    c.find(Locator::Css(
        "form[action=\"/admin/login\"] button[type=submit]",
    ))
    .await
    .unwrap()
    .click()
    .await
    .unwrap();
    c.wait()
        .for_element(Locator::Css("nav a[aria-current=page]"))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_and_the_invite_page_keep_their_own_sessions() {
    let app = TestApp::spawn(&with_admin(Deployment::sandbox())).await;
    let mut browser = Browser::phone("ux_sessions", 390, 844).await;
    create_follower(&browser, &app, "小明").await;
    sign_in_as(&browser, &app, "小明").await;
    wait_for_text(&browser, "位好友已通过你关注").await;

    admin_sign_in(&browser, &app).await;
    browser.shot("dashboard").await;

    // Back to the follower's page: still signed in, no trip to the WeChat sign-in.
    browser
        .client
        .goto(&format!("{}/invite", app.address))
        .await
        .unwrap();
    wait_for_text(&browser, "位好友已通过你关注").await;
    browser.shot("invite-still-signed-in").await;

    // And the operator is still signed in too.
    browser
        .client
        .goto(&format!("{}/admin", app.address))
        .await
        .unwrap();
    let url = browser.client.current_url().await.unwrap();
    assert_eq!(url.path(), "/admin", "the operator is still signed in");
    browser.close().await;
}
