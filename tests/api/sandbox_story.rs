//! The sandbox story, in a browser, as a person trying Fission would live it: A signs in to
//! "my invite code" through the simulator, is asked to follow first, follows, sees their QR
//! code; B opens A's scan link and follows; B is welcomed, A is told, A's page shows B as new,
//! and the leaderboard lists A. A then asks the account for their poster by message.

use std::time::{Duration, Instant};

use fantoccini::Locator;
use serde_json::Value;

use crate::browser::Browser;
use crate::helpers::{Deployment, TestApp, ADMIN_TOKEN};
use crate::invite_page::{follow_on_users_page, page_text, qr_loaded, scan_link, wait_for_text};

/// Reloads until `needle` shows (the inbox is filled by the outbox worker, asynchronously).
async fn reload_until(browser: &Browser, needle: &str, within: Duration) -> String {
    let deadline = Instant::now() + within;
    loop {
        let text = page_text(browser).await;
        if text.contains(needle) {
            return text;
        }
        assert!(Instant::now() < deadline, "{needle:?} never showed: {text}");
        tokio::time::sleep(Duration::from_millis(300)).await;
        browser.client.refresh().await.unwrap();
    }
}

async fn click(browser: &Browser, xpath: &str) {
    browser
        .client
        .find(Locator::XPath(xpath))
        .await
        .unwrap_or_else(|e| panic!("{xpath}: {e}"))
        .click()
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sandbox_story_from_sign_in_to_leaderboard() {
    let app = TestApp::spawn(&Deployment::sandbox()).await;
    let mut browser = Browser::phone("sandbox_story", 390, 844).await;
    let c = browser.client.clone();

    // A opens "my invite code": the simulator's sign-in page, where A is created.
    c.goto(&format!("{}/invite", app.address)).await.unwrap();
    wait_for_text(&browser, "选择一个测试用户").await;
    browser.shot("a-authorize").await;
    c.find(Locator::Css("form #nickname"))
        .await
        .unwrap()
        .send_keys("小明")
        .await
        .unwrap();
    click(&browser, "//button[contains(., '新建并允许')]").await;

    // A new test user does not follow yet: the page says so and points to the simulator.
    wait_for_text(&browser, "请先关注公众号").await;
    assert!(browser.fits_width().await);
    browser.shot("a-follow-first").await;
    click(&browser, "//a[contains(., '测试用户页')]").await;
    wait_for_text(&browser, "小明").await;
    follow_on_users_page(&browser, "小明").await;
    browser.shot("a-followed").await;

    // Now A has a QR code.
    c.goto(&format!("{}/invite", app.address)).await.unwrap();
    let page = wait_for_text(&browser, "位好友已通过你关注").await;
    assert!(qr_loaded(&browser).await, "A's QR code shows");
    assert_eq!(count(&browser).await, "0");
    assert!(page.contains("还没有好友"), "{page}");
    browser.shot("a-invite-page").await;

    // B opens A's scan link (what A's QR code encodes), is created there, and follows.
    let link = scan_link(&browser).await;
    assert!(link.contains("/sandbox/scan?ticket="), "{link}");
    c.goto(&link).await.unwrap();
    wait_for_text(&browser, "关注公众号").await;
    let selected = c
        .find(Locator::Css("#openid"))
        .await
        .unwrap()
        .prop("value")
        .await
        .unwrap();
    assert_eq!(
        selected.as_deref(),
        Some(""),
        "a new user is preselected, since A already follows"
    );
    c.find(Locator::Css("#nickname"))
        .await
        .unwrap()
        .send_keys("小刚")
        .await
        .unwrap();
    browser.shot("b-scan-page").await;
    click(&browser, "//button[@id='follow']").await;
    let result = wait_for_text(&browser, "已关注公众号").await;
    assert!(result.contains("欢迎关注"), "B's passive reply: {result}");
    browser.shot("b-followed").await;

    // B's inbox has the welcome.
    click(&browser, "//a[contains(., '收到的消息')]").await;
    let inbox = wait_for_text(&browser, "小刚 收到的消息").await;
    assert!(inbox.contains("欢迎关注"), "{inbox}");
    assert!(c
        .current_url()
        .await
        .unwrap()
        .path()
        .starts_with("/sandbox/inbox/"));
    browser.shot("b-inbox").await;

    // A's inbox gets the notification once the outbox worker has sent it.
    c.goto(&format!("{}/sandbox/users", app.address))
        .await
        .unwrap();
    click(
        &browser,
        "//div[contains(@class,'card')][.//strong[text()='小明']]//a[contains(@href,'/inbox/')]",
    )
    .await;
    let a_openid = c
        .current_url()
        .await
        .unwrap()
        .path()
        .trim_start_matches("/sandbox/inbox/")
        .to_string();
    let inbox = reload_until(
        &browser,
        "通过你的邀请关注了公众号",
        Duration::from_secs(15),
    )
    .await;
    assert!(inbox.contains("你已邀请 1 位好友"), "{inbox}");
    browser.shot("a-inbox-notified").await;

    // A's page counts B.
    c.goto(&format!("{}/invite", app.address)).await.unwrap();
    wait_for_text(&browser, "位好友已通过你关注").await;
    assert_eq!(count(&browser).await, "1");
    let text = browser.text().await;
    assert!(text.contains("微信用户"), "B listed, masked");
    assert!(text.contains("新增 1 位好友"), "B is new to A: {text}");
    browser.shot("a-one-friend").await;

    // The leaderboard lists A first.
    let board: Value = app
        .http
        .get(format!("{}/api/v1/leaderboard", app.address))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(board[0]["openid"], a_openid.as_str(), "{board}");
    assert_eq!(board[0]["rank"], 1);
    assert_eq!(board[0]["invites"], 1);

    // A asks the account for their poster; it arrives as an image in A's inbox.
    c.goto(&format!("{}/sandbox/inbox/{a_openid}", app.address))
        .await
        .unwrap();
    wait_for_text(&browser, "收到的消息").await;
    c.find(Locator::Css("#content"))
        .await
        .unwrap()
        .send_keys("海报")
        .await
        .unwrap();
    click(&browser, "//button[contains(., '发送')]").await;
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let shown = c
            .execute(
                "return Array.from(document.querySelectorAll('img[alt=\"图片消息\"]')).some(i => i.complete && i.naturalWidth > 0);",
                vec![],
            )
            .await
            .unwrap();
        if shown.as_bool() == Some(true) {
            break;
        }
        assert!(Instant::now() < deadline, "no poster in A's inbox");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    c.execute("window.scrollTo(0, document.body.scrollHeight)", vec![])
        .await
        .unwrap();
    browser.shot("a-inbox-poster").await;
    browser.close().await;
}

async fn count(browser: &Browser) -> String {
    browser
        .client
        .find(Locator::Css("#invite-count"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}
