//! The invite page in a real (headless) browser at phone size, signed in through the
//! simulator's authorize page in sandbox mode.

use std::time::Duration;

use chrono::Utc;
use fantoccini::Locator;
use fission::db;

use crate::browser::Browser;
use crate::helpers::{Deployment, TestApp};

/// Creates a following test user on the simulator's users page.
pub async fn create_follower(browser: &Browser, app: &TestApp, nickname: &str) {
    let c = &browser.client;
    c.goto(&format!("{}/sandbox/users", app.address))
        .await
        .unwrap();
    c.find(Locator::Css("#nickname"))
        .await
        .unwrap()
        .send_keys(nickname)
        .await
        .unwrap();
    c.find(Locator::XPath("//button[contains(., '新建')]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    // The users page again, now listing the new user (the typed name is not page text).
    wait_for_text(browser, nickname).await;
    follow_on_users_page(browser, nickname).await;
}

/// Presses "直接关注" for `nickname` on the simulator's users page (the browser is on it).
pub async fn follow_on_users_page(browser: &Browser, nickname: &str) {
    let card = format!("//div[contains(@class,'card')][.//strong[text()='{nickname}']]");
    browser
        .client
        .find(Locator::XPath(&format!(
            "{card}//button[contains(., '直接关注')]"
        )))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for_text(browser, "已关注公众号").await;
}

/// Opens /invite and signs in by picking `nickname` on the simulator's authorize page.
pub async fn sign_in_as(browser: &Browser, app: &TestApp, nickname: &str) {
    let c = &browser.client;
    c.goto(&format!("{}/invite", app.address)).await.unwrap();
    wait_for_text(browser, "选择一个测试用户").await;
    c.find(Locator::XPath(&format!(
        "//a[contains(@class,'card')][.//strong[text()='{nickname}']]"
    )))
    .await
    .unwrap()
    .click()
    .await
    .unwrap();
}

/// The page's visible text, or "" while the browser is between pages (an element looked up
/// during a navigation goes stale, so this asks the page in one script instead).
pub async fn page_text(browser: &Browser) -> String {
    browser
        .client
        .execute(
            "return document.body ? document.body.innerText : '';",
            vec![],
        )
        .await
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

pub async fn wait_for_text(browser: &Browser, needle: &str) -> String {
    for _ in 0..150 {
        let text = page_text(browser).await;
        if text.contains(needle) {
            return text;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{needle:?} not on the page: {}", page_text(browser).await);
}

pub async fn qr_loaded(browser: &Browser) -> bool {
    for _ in 0..50 {
        let loaded = browser
            .client
            .execute(
                "var i = document.querySelector('img.qr'); return !!i && i.complete && i.naturalWidth > 0;",
                vec![],
            )
            .await
            .unwrap();
        if loaded.as_bool() == Some(true) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

pub async fn scan_link(browser: &Browser) -> String {
    browser
        .client
        .find(Locator::Css("a.sandbox-link"))
        .await
        .unwrap()
        .attr("href")
        .await
        .unwrap()
        .expect("the sandbox scan link")
}

/// The ticket in the signed-in follower's scan link (what their QR code encodes).
pub async fn scan_ticket(browser: &Browser) -> String {
    reqwest::Url::parse(&scan_link(browser).await)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "ticket")
        .unwrap()
        .1
        .into_owned()
}

/// A new simulated user named `nickname` follows through `ticket` on the scan page, as a phone
/// that scanned the code would.
pub async fn join_through(app: &TestApp, ticket: &str, nickname: &str) {
    let joined = app
        .http
        .post(format!("{}/sandbox/scan", app.address))
        .form(&[("ticket", ticket), ("openid", ""), ("nickname", nickname)])
        .send()
        .await
        .unwrap();
    assert_eq!(joined.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_invite_page_on_a_phone() {
    let app = TestApp::spawn(&Deployment::sandbox()).await;
    let campaign = db::campaigns::active_at(&app.pool, Utc::now())
        .await
        .unwrap()
        .unwrap();
    let sticker = db::campaigns::add_tier(&app.pool, campaign.id, 1, "新人贴纸", true)
        .await
        .unwrap();
    db::campaigns::add_reward_codes(&app.pool, sticker.id, &["STK-7Q2M-9XPA".to_string()])
        .await
        .unwrap();
    db::campaigns::add_tier(&app.pool, campaign.id, 3, "定制帆布袋", false)
        .await
        .unwrap();

    let mut browser = Browser::phone("invite_page", 390, 844).await;
    create_follower(&browser, &app, "小红").await;
    sign_in_as(&browser, &app, "小红").await;
    wait_for_text(&browser, "位好友已通过你关注").await;
    assert!(qr_loaded(&browser).await, "the QR code image shows");
    browser.shot("signed-in").await;

    // Two friends follow through the code (the scan page, as a phone that scanned it would).
    let ticket = scan_ticket(&browser).await;
    for friend in ["张三丰", "李小龙"] {
        join_through(&app, &ticket, friend).await;
    }

    // Fission knows a friend's nickname only once they shared it (OAuth with snsapi_userinfo);
    // one of them has, the other shows as an anonymous WeChat user.
    let first: String =
        sqlx::query_scalar("SELECT invitee_openid FROM referrals ORDER BY id LIMIT 1")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    db::users::set_profile(&app.pool, &first, "张三丰", None)
        .await
        .unwrap();

    browser.client.refresh().await.unwrap();
    let text = wait_for_text(&browser, "位好友已通过你关注").await;
    let count = browser
        .client
        .find(Locator::Css("#invite-count"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(count, "2");
    let next = browser
        .client
        .find(Locator::Css("#next-tier"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(next.contains("2 / 3"), "{next}");
    assert!(next.contains("再邀请 1 位好友"), "{next}");
    assert!(next.contains("定制帆布袋"), "{next}");
    let bar = browser
        .client
        .execute(
            "var b = document.querySelector('.progress .bar'); return b.getBoundingClientRect().width / b.parentElement.getBoundingClientRect().width;",
            vec![],
        )
        .await
        .unwrap()
        .as_f64()
        .unwrap();
    assert!(
        (0.6..0.7).contains(&bar),
        "the bar is two thirds full: {bar}"
    );
    assert!(
        text.contains("新人贴纸") && text.contains("STK-7Q2M-9XPA"),
        "{text}"
    );
    assert!(
        text.contains("张*丰") && text.contains("微信用户"),
        "{text}"
    );
    assert!(!text.contains("张三丰"), "friends' names are masked");
    assert!(
        browser.fits_width().await,
        "no sideways scrolling at 390 px"
    );
    browser.shot("two-friends").await;
    browser
        .client
        .execute("window.scrollTo(0, document.body.scrollHeight)", vec![])
        .await
        .unwrap();
    browser.shot("two-friends-bottom").await;

    // The poster opens from the page.
    browser
        .client
        .find(Locator::XPath("//a[contains(., '专属海报')]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    browser.shot("poster").await;
    browser.close().await;

    // The narrowest phones still get the page without sideways scrolling.
    let mut narrow = Browser::phone("invite_page_360", 360, 740).await;
    create_follower(&narrow, &app, "小绿").await;
    sign_in_as(&narrow, &app, "小绿").await;
    wait_for_text(&narrow, "位好友已通过你关注").await;
    assert!(narrow.fits_width().await, "no sideways scrolling at 360 px");
    narrow.shot("signed-in-360").await;
    narrow.close().await;
}

/// The invite page asks for a subscription notice; in sandbox mode its button opens the
/// simulator's prompt (WeChat's open tag needs WeChat). After "允许", the next friend arrives as
/// a subscription notice when no customer-service message can be sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_subscription_button_brings_the_next_credit_as_a_subscription_notice() {
    let app = TestApp::spawn(&Deployment::sandbox().set("FISSION_NOTICE_DELAY_MS", "0")).await;
    sqlx::query(
        "UPDATE campaigns SET subscribe_template_id = 'sub_invite_progress',
                subscribe_fields = E'thing1={invitee}\\nnumber2={count}\\nthing3={next}'
         WHERE is_default",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    let mut browser = Browser::phone("invite_subscribe", 390, 844).await;
    create_follower(&browser, &app, "小明").await;
    sign_in_as(&browser, &app, "小明").await;
    wait_for_text(&browser, "位好友已通过你关注").await;
    let ticket = scan_ticket(&browser).await;
    browser.shot("with-button").await;

    browser
        .client
        .find(Locator::Css("#subscribe"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for_text(&browser, "好友助力提醒").await;
    browser.shot("prompt").await;
    browser
        .client
        .find(Locator::Css("#accept"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    // Back on the invite page.
    wait_for_text(&browser, "位好友已通过你关注").await;
    let subscriber: String = sqlx::query_scalar("SELECT openid FROM notice_subscriptions")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    // The three messages the follow allowed for a minute are spent (as if three friends had
    // joined already), so only the subscription can carry the next one.
    sqlx::query("UPDATE users SET cs_left = 0 WHERE openid = $1")
        .bind(&subscriber)
        .execute(&app.pool)
        .await
        .unwrap();

    join_through(&app, &ticket, "小刚").await;

    let inbox_url = format!(
        "{}/sandbox/inbox/{}",
        app.address,
        urlencoding_path(&subscriber)
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        browser.client.goto(&inbox_url).await.unwrap();
        let text = page_text(&browser).await;
        if text.contains("订阅通知") {
            assert!(text.contains("sub_invite_progress"), "{text}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no subscription notice arrived: {text}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    browser.shot("notice-in-inbox").await;
    let custom: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM message_log WHERE openid = $1 AND channel = 'custom'",
    )
    .bind(&subscriber)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(custom, 0);
    browser.close().await;
}

/// An openid as a path segment (they are URL-safe except for `-` and `_`, which are fine).
fn urlencoding_path(openid: &str) -> String {
    openid
        .chars()
        .map(|c| match c {
            'A'..='Z' | 'a'..='z' | '0'..='9' | '-' | '_' => c.to_string(),
            other => format!("%{:02X}", other as u32),
        })
        .collect()
}
