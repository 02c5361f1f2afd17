//! Poster layout by dragging: the campaign page previews the poster before any background is
//! uploaded, and dragging the QR code's box on it moves the QR code (the X/Y fields follow,
//! and saving keeps the new place).

use std::time::Duration;

use fantoccini::actions::{InputSource, MouseActions, PointerAction, MOUSE_BUTTON_LEFT};
use fantoccini::Locator;

use crate::admin_client::with_admin;
use crate::browser::Browser;
use crate::helpers::{Deployment, FakeWechat, TestApp};

async fn value(browser: &Browser, name: &str) -> i64 {
    browser
        .client
        .find(Locator::Css(&format!("[name=\"{name}\"]")))
        .await
        .unwrap()
        .prop("value")
        .await
        .unwrap()
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dragging_the_qr_box_moves_the_qr_code() {
    let wechat = FakeWechat::start(100_000, None).await;
    let app = TestApp::spawn(&with_admin(Deployment::new(&wechat))).await;
    let campaign: i64 = sqlx::query_scalar("SELECT id FROM campaigns WHERE is_default")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let mut browser = Browser::with_language("ux_poster_drag", 1280, 900, "zh-CN").await;
    let c = browser.client.clone();
    crate::ux_sessions::admin_sign_in(&browser, &app).await;
    c.goto(&format!("{}/admin/campaigns/{campaign}", app.address))
        .await
        .unwrap();

    // No background was uploaded, and the preview is there all the same, with the boxes.
    let qr_box = c
        .wait()
        .at_most(Duration::from_secs(15))
        .for_element(Locator::Css(".layout-box.layout-qr:not([hidden])"))
        .await
        .expect("a box for the QR code over the preview");
    c.execute(
        "document.querySelector('.poster-stage').scrollIntoView({block: 'center'});",
        vec![],
    )
    .await
    .unwrap();
    browser.shot("before-drag").await;
    let scale = c
        .execute(
            "var i = document.querySelector('.poster-stage img'); return i.clientWidth / i.naturalWidth;",
            vec![],
        )
        .await
        .unwrap()
        .as_f64()
        .unwrap();
    let (x0, y0) = (value(&browser, "qr_x").await, value(&browser, "qr_y").await);

    let drag = MouseActions::new("mouse".to_string())
        .then(PointerAction::MoveToElement {
            element: qr_box,
            duration: None,
            x: 0.0,
            y: 0.0,
        })
        .then(PointerAction::Down {
            button: MOUSE_BUTTON_LEFT,
        })
        .then(PointerAction::MoveBy {
            duration: Some(Duration::from_millis(200)),
            x: -60.0,
            y: -150.0,
        })
        .then(PointerAction::Up {
            button: MOUSE_BUTTON_LEFT,
        });
    c.perform_actions(drag).await.unwrap();
    browser.shot("after-drag").await;
    let (x1, y1) = (value(&browser, "qr_x").await, value(&browser, "qr_y").await);
    let expect_x = x0 - (60.0 / scale).round() as i64;
    let expect_y = y0 - (150.0 / scale).round() as i64;
    assert!(
        (x1 - expect_x).abs() <= 2,
        "x {x0} → {x1}, expected {expect_x}"
    );
    assert!(
        (y1 - expect_y).abs() <= 2,
        "y {y0} → {y1}, expected {expect_y}"
    );

    // Saving keeps it.
    c.find(Locator::Css("#campaign-form .actions button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait()
        .for_element(Locator::Css(".alert.ok"))
        .await
        .unwrap();
    let layout: serde_json::Value =
        sqlx::query_scalar("SELECT poster_layout FROM campaigns WHERE id = $1")
            .bind(campaign)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(layout["qr"]["x"], x1);
    assert_eq!(layout["qr"]["y"], y1);
    browser.shot("saved").await;
    browser.close().await;
}
