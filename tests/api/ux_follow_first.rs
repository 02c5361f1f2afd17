//! A visitor who does not follow the account yet is shown the account's name and a QR code to
//! follow it: a permanent channel code Fission creates for this page, so those follows are
//! counted. After following, the page's button brings them back to their invite code.

use fantoccini::Locator;

use crate::browser::Browser;
use crate::helpers::{Deployment, TestApp};
use crate::invite::decode_qr;
use crate::invite_page::wait_for_text;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_follow_first_page_offers_a_channel_code_to_follow() {
    let app = TestApp::spawn(&Deployment::sandbox()).await;
    let mut browser = Browser::phone("ux_follow_first", 390, 844).await;
    let c = browser.client.clone();
    // A new WeChat user, who does not follow the account, opens the invite page.
    c.goto(&format!("{}/invite", app.address)).await.unwrap();
    wait_for_text(&browser, "选择一个测试用户").await;
    c.find(Locator::Css("form #nickname"))
        .await
        .unwrap()
        .send_keys("小白")
        .await
        .unwrap();
    c.find(Locator::Css("form button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let page = wait_for_text(&browser, "请先关注公众号").await;
    assert!(page.contains("Fission 测试号"), "names the account: {page}");
    assert!(browser.fits_width().await);
    browser.shot("follow-first").await;

    // The QR code on the page is a Fission channel code.
    let src = c
        .find(Locator::Css("img.follow-qr"))
        .await
        .expect("a QR code to follow")
        .attr("src")
        .await
        .unwrap()
        .unwrap();
    let png = app
        .http
        .get(format!("{}{src}", app.address))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let contents = decode_qr(&png);
    assert_eq!(contents.len(), 1, "one QR code");
    let (channel, url): (i64, String) = sqlx::query_as(
        "SELECT channel_id, url FROM invite_codes WHERE channel_id IS NOT NULL AND permanent",
    )
    .fetch_one(&app.pool)
    .await
    .expect("a permanent channel code");
    assert_eq!(contents[0], url);
    let name: String = sqlx::query_scalar("SELECT name FROM channels WHERE id = $1")
        .bind(channel)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert!(name.contains("先关注"), "{name}");

    // Scanning it (the simulator's scan page for this user) follows and is counted.
    c.goto(&url).await.unwrap();
    wait_for_text(&browser, "关注公众号").await;
    c.find(Locator::Css("#follow"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for_text(&browser, "已关注公众号").await;
    let follows: i64 = sqlx::query_scalar("SELECT follows FROM invite_codes WHERE channel_id = $1")
        .bind(channel)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(follows, 1);

    // Back on the invite page, the code is there; opening it again reuses the same channel.
    c.goto(&format!("{}/invite", app.address)).await.unwrap();
    wait_for_text(&browser, "位好友已通过你关注").await;
    browser.shot("after-following").await;
    let channels: i64 = sqlx::query_scalar("SELECT count(*) FROM channels")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(channels, 1);
    browser.close().await;
}
