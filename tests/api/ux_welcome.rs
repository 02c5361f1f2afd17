//! The welcome and the inviter's notice read naturally whether or not the inviter shared their
//! nickname: "你的好友小明" with a name, "一位好友" without, and no stray spaces.

use std::time::{Duration, Instant};

use fantoccini::Locator;

use crate::browser::Browser;
use crate::helpers::{Deployment, TestApp};
use crate::invite_page::{create_follower, page_text, scan_link, sign_in_as, wait_for_text};

/// A new user `friend` follows through the scan link; returns the account's reply.
async fn follow_through(browser: &Browser, link: &str, friend: &str) -> String {
    let c = &browser.client;
    c.goto(link).await.unwrap();
    wait_for_text(browser, "关注公众号").await;
    c.find(Locator::Css("#nickname"))
        .await
        .unwrap()
        .send_keys(friend)
        .await
        .unwrap();
    c.find(Locator::Css("#follow"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for_text(browser, "已关注公众号").await;
    c.find(Locator::Css(".bubble"))
        .await
        .expect("the account's reply")
        .text()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_welcome_names_the_inviter_only_when_they_shared_their_name() {
    let app = TestApp::spawn(&Deployment::sandbox().set("FISSION_NOTICE_DELAY_MS", "0")).await;
    let mut browser = Browser::phone("ux_welcome", 390, 844).await;
    create_follower(&browser, &app, "小明").await;
    sign_in_as(&browser, &app, "小明").await;
    wait_for_text(&browser, "位好友已通过你关注").await;
    let link = scan_link(&browser).await;

    // 小明 has not shared a nickname: the welcome speaks of a friend.
    let reply = follow_through(&browser, &link, "小红").await;
    browser.shot("welcome-without-name").await;
    assert_eq!(reply, "欢迎关注！一位好友邀请你来到这里。");

    // 小明's notice: no stray space where the unknown name would be.
    browser
        .client
        .goto(&format!("{}/sandbox/users", app.address))
        .await
        .unwrap();
    browser
        .client
        .find(Locator::XPath(
            "//div[contains(@class,'card')][.//strong[text()='小明']]//a[contains(@href,'/inbox/')]",
        ))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    let inbox = loop {
        let text = page_text(&browser).await;
        if text.contains("通过你的邀请") {
            break text;
        }
        assert!(Instant::now() < deadline, "no notice reached 小明: {text}");
        tokio::time::sleep(Duration::from_millis(300)).await;
        browser.client.refresh().await.unwrap();
    };
    assert!(
        inbox.contains("一位新朋友通过你的邀请关注了公众号"),
        "{inbox}"
    );
    assert!(!inbox.contains("朋友 通过"), "{inbox}");
    browser.shot("notice-without-name").await;

    // 小明 shares the nickname on the invite page (WeChat's consent for the profile).
    browser
        .client
        .goto(&format!("{}/invite", app.address))
        .await
        .unwrap();
    wait_for_text(&browser, "位好友已通过你关注").await;
    browser
        .client
        .find(Locator::XPath("//a[contains(., '显示我的昵称')]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for_text(&browser, "选择一个测试用户").await;
    browser
        .client
        .find(Locator::XPath(
            "//a[contains(@class,'card')][.//strong[text()='小明']]",
        ))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for_text(&browser, "小明，这是你的专属邀请码").await;

    let reply = follow_through(&browser, &link, "小刚").await;
    browser.shot("welcome-with-name").await;
    assert_eq!(reply, "欢迎关注！你的好友小明邀请你来到这里。");
    browser.close().await;
}
