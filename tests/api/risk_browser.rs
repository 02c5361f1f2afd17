//! The review queue in a real browser: three farms held under "hold" appear with their
//! evidence; one is approved from its page, one blocked through the queue's bulk form; each
//! decision shows with the operator and time, and the leaderboard marks the one still held.

use chrono::Utc;
use fantoccini::{Client, Locator};

use crate::admin_client::with_admin;
use crate::browser::{click, Browser};
use crate::helpers::{openid, Deployment, FakeWechat, TestApp};
use crate::risk::{default_campaign, farm, set_policy};

/// Polls the text of `css` until it is `expected` (a form submit reloads the page).
async fn wait_for_text(client: &Client, css: &str, expected: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let text = match client.find(Locator::Css(css)).await {
            Ok(e) => e.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        if text == expected {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{css} says {text:?}, not {expected:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_review_flagged_inviters_in_the_browser() {
    let wechat = FakeWechat::start(100_000, None).await;
    let app = TestApp::spawn(&with_admin(Deployment::new(&wechat))).await;
    let campaign = default_campaign(&app).await;
    set_policy(&app, campaign, "hold").await;
    let t0 = Utc::now().timestamp() - 86_400;
    let farmers: Vec<String> = (0..3).map(|i| openid("qfarmer", i)).collect();
    for (i, farmer) in farmers.iter().enumerate() {
        farm(&app, farmer, &format!("qf{i}x"), 15, 0, t0 + i as i64 * 600).await;
    }
    fission::db::users::set_profile(&app.pool, &farmers[2], "刷量张三", None)
        .await
        .unwrap();

    let mut browser = Browser::with_language("risk_review", 1280, 900, "en-US").await;
    let c = browser.client.clone();
    crate::ux_sessions::admin_sign_in(&browser, &app).await;
    c.goto(&format!("{}/admin/risk", app.address))
        .await
        .unwrap();
    c.wait()
        .for_element(Locator::Css("#risk-queue"))
        .await
        .unwrap();
    for farmer in &farmers {
        c.find(Locator::Css(&format!("tr[data-openid=\"{farmer}\"]")))
            .await
            .unwrap_or_else(|_| panic!("{farmer} is not in the queue"));
    }
    assert!(browser.text().await.contains("Credits within 60 s"));
    browser.shot("queue").await;

    // Approve the first from their page, after reading the evidence.
    click(&c, &format!("tr[data-openid=\"{}\"] a", farmers[0])).await;
    c.wait()
        .for_element(Locator::Css(
            "#risk-signals tr[data-signal=\"credits_per_minute\"]",
        ))
        .await
        .unwrap();
    let timeline = c
        .find_all(Locator::Css("#risk-timeline tbody tr"))
        .await
        .unwrap();
    assert_eq!(timeline.len(), 15, "every credit on the timeline");
    browser.shot("evidence").await;
    click(&c, "#risk-actions button[value=\"approve\"]").await;
    wait_for_text(&c, "#risk-status", "OK").await;
    let decisions = c
        .find(Locator::Css("#risk-decisions"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        decisions.contains("Approve") && decisions.contains("admin"),
        "{decisions}"
    );
    assert!(
        decisions.contains("Hold rewards") && decisions.contains("Automatic"),
        "{decisions}"
    );
    browser.shot("approved").await;

    // Block the second through the queue's bulk form.
    c.goto(&format!("{}/admin/risk", app.address))
        .await
        .unwrap();
    click(
        &c,
        &format!("input[name=pick][value=\"{campaign}:{}\"]", farmers[1]),
    )
    .await;
    c.find(Locator::Css("select[name=action]"))
        .await
        .unwrap()
        .select_by_value("block")
        .await
        .unwrap();
    click(&c, "#risk-queue button[type=submit]").await;
    c.wait()
        .for_element(Locator::Css("#risk-done"))
        .await
        .unwrap();
    let row = c
        .find(Locator::Css(&format!("tr[data-openid=\"{}\"]", farmers[1])))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(row.contains("Blocked"), "{row}");
    assert!(
        c.find(Locator::Css(&format!("tr[data-openid=\"{}\"]", farmers[0])))
            .await
            .is_err(),
        "the approved inviter left the queue"
    );
    browser.shot("blocked").await;

    // The leaderboard marks the one still held; the blocked one is off the board.
    c.goto(&format!(
        "{}/admin/leaderboard?campaign={campaign}",
        app.address
    ))
    .await
    .unwrap();
    c.wait()
        .for_element(Locator::Css("table.data"))
        .await
        .unwrap();
    let text = browser.text().await;
    assert!(text.contains("刷量张三 Held"), "{text}");
    assert!(!text.contains(farmers[1].as_str()), "{text}");
    browser.shot("leaderboard").await;
    browser.close().await;
}
