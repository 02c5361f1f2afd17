//! Every dashboard page on a 390 px phone: nothing scrolls sideways, every tab, link, button
//! and field is on screen (not hidden in a table or tab strip that scrolls), and the tier form
//! offers rows enough for a campaign's tiers.

use chrono::Utc;
use fantoccini::Locator;

use crate::admin_client::with_admin;
use crate::browser::Browser;
use crate::helpers::{openid, Deployment, FakeWechat, TestApp};

/// Controls whose right edge is past the viewport (a scrolled container hides them).
const OFF_SCREEN: &str = "return Array.from(document.querySelectorAll('a, button, input:not([type=hidden]), select, textarea'))
    .filter(e => { const r = e.getBoundingClientRect(); return r.width > 0 && (r.right > window.innerWidth + 1 || r.left < -1); })
    .map(e => e.outerHTML.slice(0, 120));";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_dashboard_page_works_at_390_px() {
    let wechat = FakeWechat::start(100_000, None).await;
    let app = TestApp::spawn(&with_admin(Deployment::new(&wechat))).await;
    let campaign: i64 = sqlx::query_scalar("SELECT id FROM campaigns WHERE is_default")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    // An in-store reward the inviter wins, for the staff's redemption page.
    let tier = fission::db::campaigns::add_tier(&app.pool, campaign, 1, "门店咖啡券", false)
        .await
        .unwrap();
    sqlx::query("UPDATE reward_tiers SET redeem_in_store = true WHERE id = $1")
        .bind(tier.id)
        .execute(&app.pool)
        .await
        .unwrap();
    let inviter = openid("phoneinv", 1);
    let scene = app.issue_code(&inviter).await["scene_id"].as_i64().unwrap();
    fission::db::users::set_profile(&app.pool, &inviter, "王小明", None)
        .await
        .unwrap();
    let campaign: i64 = sqlx::query_scalar("SELECT id FROM campaigns WHERE is_default")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    // A low velocity threshold flags the inviter, so the review pages have a row to show.
    let mut policy = fission::db::risk::policy(&app.pool, campaign)
        .await
        .unwrap()
        .unwrap();
    policy.risk_per_minute = 2;
    fission::db::risk::set_policy(&app.pool, campaign, &policy)
        .await
        .unwrap();
    let now = Utc::now().timestamp();
    for i in 0..3 {
        app.subscribe(&openid("phonefriend", i), Some(scene), now + i as i64)
            .await;
    }
    let mut grant = None;
    for _ in 0..100 {
        grant = sqlx::query_scalar("SELECT id FROM reward_grants WHERE tier_id = $1")
            .bind(tier.id)
            .fetch_optional(&app.pool)
            .await
            .unwrap();
        if grant.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let token = fission::db::redemptions::token_for(
        &app.pool,
        grant.expect("the inviter won the tier"),
        "00112233445566778899aabbccddeeff",
    )
    .await
    .unwrap();

    // An endpoint with a delivery in the log, so the webhooks page shows its tables.
    let hook = fission::db::webhooks::create(
        &app.pool,
        "https://hooks.example.com/fission/a-rather-long-path-for-a-narrow-screen",
        "secret",
        &["*".to_string()],
    )
    .await
    .unwrap();
    fission::db::webhooks::emit_test(&app.pool, hook, serde_json::json!({}))
        .await
        .unwrap();

    let mut browser = Browser::with_language("ux_dashboard_phone", 390, 844, "zh-CN").await;
    let c = browser.client.clone();
    crate::ux_sessions::admin_sign_in(&browser, &app).await;

    let pages = [
        ("home", "/admin".to_string()),
        ("leaderboard", "/admin/leaderboard".to_string()),
        ("user", format!("/admin/users/{inviter}")),
        ("campaigns", "/admin/campaigns".to_string()),
        ("campaign-new", "/admin/campaigns/new".to_string()),
        ("campaign-edit", format!("/admin/campaigns/{campaign}")),
        ("campaign-risk", format!("/admin/campaigns/{campaign}/risk")),
        ("risk", "/admin/risk".to_string()),
        ("risk-inviter", format!("/admin/risk/{campaign}/{inviter}")),
        ("channels", "/admin/channels".to_string()),
        ("webhooks", "/admin/webhooks".to_string()),
        ("charts", "/admin/charts".to_string()),
        ("health", "/admin/health".to_string()),
        ("redeem-start", "/admin/redeem".to_string()),
        ("redeem", format!("/admin/redeem/{token}")),
        ("login", "/admin/login".to_string()),
    ];
    let mut problems = Vec::new();
    for (name, path) in pages {
        c.goto(&format!("{}{path}", app.address)).await.unwrap();
        c.wait()
            .for_element(Locator::Css("main.page"))
            .await
            .unwrap();
        browser.shot(name).await;
        if !browser.fits_width().await {
            problems.push(format!("{path} scrolls sideways"));
        }
        let hidden = c.execute(OFF_SCREEN, vec![]).await.unwrap();
        let hidden = hidden.as_array().cloned().unwrap_or_default();
        if !hidden.is_empty() {
            problems.push(format!("{path}: off screen: {hidden:?}"));
        }
    }

    // The tier form offers rows enough for a campaign's tiers, and its labels stay on one line.
    c.goto(&format!("{}/admin/campaigns/new", app.address))
        .await
        .unwrap();
    let rows = c
        .find_all(Locator::Css(".tiers .tier:not(.head)"))
        .await
        .unwrap()
        .len();
    if rows < 5 {
        problems.push(format!("the new campaign offers {rows} tier rows"));
    }
    let wrapped = c
        .execute(
            "return Array.from(document.querySelectorAll('.tier.head span, .tier label.check'))
               .filter(e => e.getClientRects().length > 1 || e.getBoundingClientRect().height > 40)
               .map(e => e.textContent.trim());",
            vec![],
        )
        .await
        .unwrap();
    if wrapped.as_array().is_some_and(|w| !w.is_empty()) {
        problems.push(format!("tier labels wrap: {wrapped}"));
    }
    browser.close().await;
    assert!(problems.is_empty(), "{problems:#?}");
}
