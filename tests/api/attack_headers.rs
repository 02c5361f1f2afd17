//! Every kind of response carries the security headers (a CSP without inline script, no
//! framing, no MIME sniffing, a referrer policy), pages carry no inline script that policy
//! would block, and the dashboard and its exports are never stored by a cache.

use reqwest::Response;

use crate::admin_client::{with_admin, Operator};
use crate::helpers::{openid, Deployment, FakeWechat, TestApp};
use crate::invite::sign_in;

fn header<'a>(response: &'a Response, name: &str) -> &'a str {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

/// Checks the headers of `response` and, for a page, that nothing in it needs inline script.
async fn assert_protected(what: &str, response: Response, no_store: bool) {
    let csp = header(&response, "content-security-policy").to_string();
    assert!(
        csp.contains("frame-ancestors 'none'"),
        "{what}: CSP {csp:?}"
    );
    assert!(csp.contains("script-src 'self'"), "{what}: CSP {csp:?}");
    for directive in csp.split(';').map(str::trim) {
        if directive.starts_with("script-src") || directive.starts_with("default-src") {
            assert!(!directive.contains("unsafe"), "{what}: {directive}");
        }
    }
    assert_eq!(header(&response, "x-frame-options"), "DENY", "{what}");
    assert_eq!(
        header(&response, "x-content-type-options"),
        "nosniff",
        "{what}"
    );
    assert!(!header(&response, "referrer-policy").is_empty(), "{what}");
    if no_store {
        assert!(
            header(&response, "cache-control").contains("no-store"),
            "{what}: cache-control {:?}",
            header(&response, "cache-control")
        );
    }
    let is_html = header(&response, "content-type").starts_with("text/html");
    if is_html {
        let body = response.text().await.unwrap().to_ascii_lowercase();
        let mut rest = body.as_str();
        while let Some(at) = rest.find("<script") {
            let tag_end = rest[at..].find('>').map_or(rest.len(), |e| at + e);
            assert!(
                rest[at..tag_end].contains(" src="),
                "{what}: inline script {}",
                &rest[at..(at + 200).min(rest.len())]
            );
            rest = &rest[tag_end..];
        }
        for handler in [
            " onclick=",
            " onchange=",
            " onload=",
            " onsubmit=",
            "javascript:",
        ] {
            assert!(!body.contains(handler), "{what}: inline handler {handler}");
        }
    }
}

#[tokio::test]
async fn every_page_type_carries_the_security_headers() {
    let wechat = FakeWechat::start(100_000, None).await;
    let app = TestApp::spawn(&with_admin(Deployment::new(&wechat))).await;
    let mut operator = Operator::new(&app);
    let login_page = operator.get("/admin/login").await;
    assert_protected("login page", login_page, true).await;
    operator.login().await;
    for path in [
        "/admin",
        "/admin/leaderboard",
        "/admin/campaigns",
        "/admin/charts",
        "/admin/health",
        "/admin/channels",
        "/admin/nope",
    ] {
        let page = operator.get(path).await;
        assert_protected(path, page, true).await;
    }
    let export = app.api_get("/admin/export/referrals.csv").await;
    assert_eq!(export.status(), 200);
    assert_protected("CSV export", export, true).await;
    let api = app.api_get("/api/v1/leaderboard").await;
    assert_protected("API", api, false).await;

    let alice = openid("headers", 1);
    wechat.sim.add_user(&alice, "阿丽", true);
    let anonymous = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for path in [
        "/invite",
        "/healthz",
        "/static/fission.css",
        "/static/admin-charts.js",
    ] {
        let response = anonymous
            .get(format!("{}{path}", app.address))
            .send()
            .await
            .unwrap();
        assert_protected(path, response, false).await;
    }
    let follower = sign_in(&app, &wechat, &alice, "snsapi_base").await;
    for path in ["/invite", "/invite/qrcode.png", "/invite/poster.png"] {
        let response = follower
            .get(format!("{}{path}", app.address))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
        assert_protected(path, response, false).await;
    }
}

#[tokio::test]
async fn the_sandbox_pages_carry_them_too() {
    let app = TestApp::spawn(&Deployment::sandbox()).await;
    let code = app.issue_code(&openid("sandboxhdr", 1)).await;
    let scan_url = code["url"].as_str().expect("scan url").to_string();
    let client = reqwest::Client::new();
    for url in [
        scan_url,
        format!("{}/sandbox/", app.address),
        format!("{}/sandbox/users", app.address),
    ] {
        let response = client.get(&url).send().await.unwrap();
        assert_eq!(response.status(), 200, "{url}");
        assert_protected(&url, response, false).await;
    }
}
