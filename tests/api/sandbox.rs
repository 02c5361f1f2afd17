//! Sandbox mode: the simulator is mounted only without an AppID, and its pages work on a phone.

use crate::browser::Browser;
use crate::helpers::{spawn_app, Deployment, TestApp};

#[tokio::test]
async fn with_an_appid_there_is_no_sandbox() {
    let (app, _wechat) = spawn_app().await;
    for path in [
        "/sandbox/",
        "/sandbox/users",
        "/sandbox/cgi-bin/token?grant_type=client_credential",
    ] {
        let response = app
            .http
            .get(format!("{}{path}", app.address))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 404, "{path}");
    }
}

#[tokio::test]
async fn sandbox_mode_mounts_the_simulator_and_points_the_client_at_it() {
    let app = TestApp::spawn(&Deployment::sandbox()).await;
    let home = app
        .http
        .get(format!("{}/sandbox/", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(home.status(), 200);
    assert!(home.text().await.unwrap().contains("沙箱模式"));
    // A code issued in sandbox mode comes from the simulator and encodes its scan page.
    let code = app.issue_code("oSandboxUser000000000000001").await;
    let url = code["url"].as_str().unwrap();
    assert!(
        url.starts_with(&format!("{}/sandbox/scan?ticket=", app.address)),
        "{url}"
    );
    let scan_page = app.http.get(url).send().await.unwrap();
    assert_eq!(scan_page.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_simulator_pages_fit_a_phone() {
    let app = TestApp::spawn(&Deployment::sandbox()).await;
    let mut browser = Browser::phone("sandbox_pages", 360, 740).await;
    browser
        .client
        .goto(&format!("{}/sandbox/", app.address))
        .await
        .unwrap();
    assert!(browser.text().await.contains("SANDBOX"));
    assert!(
        browser.fits_width().await,
        "no horizontal scrolling at 360 px"
    );
    let shot = browser.shot("sandbox-home").await;
    assert!(std::fs::metadata(shot).unwrap().len() > 1000);
    browser.close().await;
}
