//! The dashboard in a real browser (Chromium): sign in, read the leaderboard of seeded data,
//! create a campaign with two reward tiers (after a refused submit that keeps every field),
//! upload a poster background and open its preview; then the other pages, and the leaderboard
//! on a phone. Screenshots go to test-output/admin_desktop/ and test-output/admin_phone/.

use std::io::Cursor;
use std::time::Duration;

use chrono::Utc;
use fantoccini::{Client, Locator};

use crate::admin_client::{with_admin, ADMIN_PASSWORD};
use crate::browser::{click, fill, Browser};
use crate::helpers::{openid, Deployment, FakeWechat, TestApp};

async fn seed(app: &TestApp) {
    let inviters = [("王小明", 5), ("Alice Chen", 3), ("李雷", 2)];
    let now = Utc::now().timestamp();
    for (n, (name, friends)) in inviters.iter().enumerate() {
        let inviter = openid("boardinv", n);
        let scene = app.issue_code(&inviter).await["scene_id"].as_i64().unwrap();
        fission::db::users::set_profile(&app.pool, &inviter, name, None)
            .await
            .unwrap();
        for i in 0..*friends {
            let friend = openid(&format!("boardf{n}x"), i);
            app.subscribe(&friend, Some(scene), now + i as i64).await;
        }
    }
    // One friend leaves at once: a revoked credit shows on the inviter's page.
    app.unsubscribe(&openid("boardf0x", 0), now + 30).await;
}

async fn sign_in(browser: &Browser, base: &str) {
    let c = &browser.client;
    c.goto(&format!("{base}/admin")).await.unwrap();
    assert!(c
        .current_url()
        .await
        .unwrap()
        .path()
        .ends_with("/admin/login"));
    fill(c, "username", "admin").await;
    fill(c, "password", ADMIN_PASSWORD).await;
    click(c, "form[action=\"/admin/login\"] button[type=submit]").await;
    c.wait()
        .for_element(Locator::Css("nav a[aria-current=page]"))
        .await
        .unwrap();
}

fn poster_png() -> std::path::PathBuf {
    let image = image::RgbImage::from_fn(750, 1334, |x, y| {
        let t = y as f32 / 1334.0;
        let stripe = if (x / 50 + y / 50) % 2 == 0 {
            12.0
        } else {
            0.0
        };
        image::Rgb([
            (230.0 - 120.0 * t + stripe) as u8,
            (80.0 + 40.0 * t) as u8,
            (60.0 + 120.0 * t) as u8,
        ])
    });
    let mut png = Vec::new();
    image::DynamicImage::ImageRgb8(image)
        .write_to(&mut Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    let path = std::env::temp_dir().join(format!("poster-bg-{}.png", uuid::Uuid::new_v4()));
    std::fs::write(&path, png).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_signs_in_reads_the_board_and_sets_up_a_campaign() {
    let wechat = FakeWechat::start(100_000, None).await;
    let app = TestApp::spawn(&with_admin(Deployment::new(&wechat))).await;
    seed(&app).await;
    let base = app.address.clone();

    let mut browser = Browser::with_language("admin_desktop", 1280, 900, "zh-CN").await;
    let c = browser.client.clone();
    c.goto(&format!("{base}/admin")).await.unwrap();
    browser.shot("login").await;
    sign_in(&browser, &base).await;
    let home = browser.text().await;
    assert!(home.contains("王小明"), "{home}");
    browser.shot("home").await;

    c.goto(&format!("{base}/admin/leaderboard")).await.unwrap();
    let board = browser.text().await;
    let (first, second) = (
        board.find("王小明").unwrap(),
        board.find("Alice Chen").unwrap(),
    );
    assert!(first < second, "ranked by invites: {board}");
    browser.shot("leaderboard").await;
    fill(&c, "q", "Alice").await;
    click(&c, "form.filters button[type=submit]").await;
    for _ in 0..100 {
        if c.current_url().await.unwrap().as_str().contains("q=Alice") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let searched = browser.text().await;
    assert!(searched.contains("Alice Chen") && !searched.contains("王小明"));

    c.goto(&format!("{base}/admin/users/{}", openid("boardinv", 0)))
        .await
        .unwrap();
    let user = browser.text().await;
    assert!(user.contains("已撤销"), "the revoked credit shows: {user}");
    browser.shot("user").await;

    // A campaign with two tiers; the first submit has a typo in a placeholder.
    c.goto(&format!("{base}/admin/campaigns/new"))
        .await
        .unwrap();
    fill(&c, "name", "双十一邀请赛").await;
    fill(&c, "tier_threshold_0", "3").await;
    fill(&c, "tier_name_0", "10 元优惠券").await;
    fill(&c, "tier_threshold_1", "10").await;
    fill(&c, "tier_name_1", "定制礼盒").await;
    click(&c, "[name=tier_codes_1]").await;
    fill(
        &c,
        "credit_text",
        "{invitee} 已关注，你共邀请 {count} 位。{nxt}",
    )
    .await;
    fill(&c, "rules", "邀请好友关注即可参与；好友 7 天内取关不计入。").await;
    click(&c, "#campaign-form .actions button").await;
    c.wait()
        .for_element(Locator::Css(".field-error"))
        .await
        .unwrap();
    let refused = browser.text().await;
    assert!(refused.contains("不支持的 {占位符}"), "{refused}");
    let kept = c
        .find(Locator::Css("[name=tier_name_1]"))
        .await
        .unwrap()
        .prop("value")
        .await
        .unwrap();
    assert_eq!(
        kept.as_deref(),
        Some("定制礼盒"),
        "nothing lost on a failed submit"
    );
    browser.shot("campaign-refused").await;
    fill(
        &c,
        "credit_text",
        "{invitee} 已关注，你共邀请 {count} 位。{next}",
    )
    .await;
    click(&c, "#campaign-form .actions button").await;
    wait_text(&browser, "已保存").await;
    let url = c.current_url().await.unwrap();
    let id: i64 = url
        .path()
        .trim_start_matches("/admin/campaigns/")
        .parse()
        .unwrap();
    let tiers: Vec<(i32, String)> = sqlx::query_as(
        "SELECT threshold, name FROM reward_tiers WHERE campaign_id = $1 ORDER BY threshold",
    )
    .bind(id)
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        tiers,
        vec![(3, "10 元优惠券".into()), (10, "定制礼盒".into())]
    );

    // Poster background and a code pool.
    let background = poster_png();
    c.find(Locator::Css("input[name=background]"))
        .await
        .unwrap()
        .send_keys(background.to_str().unwrap())
        .await
        .unwrap();
    click(&c, "form.upload button[type=submit]").await;
    // The preview shows before any upload too: wait for the page that confirms this one.
    wait_text(&browser, "上传成功").await;
    fill(&c, "codes", "GIFT-0001\nGIFT-0002\nGIFT-0003").await;
    click(&c, ".pool form.upload button[type=submit]").await;
    wait_text(&browser, "剩余兑换码: 3").await;
    browser.shot("campaign-saved").await;
    c.execute("window.scrollTo(0, document.body.scrollHeight)", vec![])
        .await
        .unwrap();
    browser.shot("campaign-saved-bottom").await;
    let preview = format!("{base}/admin/campaigns/{id}/poster-preview.png");
    c.goto(&preview).await.unwrap();
    browser.shot("poster-preview").await;
    let loaded = c
        .execute(
            "return document.images.length === 1 && document.images[0].naturalWidth === 750;",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        loaded.as_bool(),
        Some(true),
        "the preview is the uploaded image"
    );

    // The other pages render with the seeded data.
    fill_channel(&browser, &base).await;
    browser.shot("channels").await;
    c.goto(&format!("{base}/admin/charts")).await.unwrap();
    c.wait()
        .for_element(Locator::Css("#chart-daily"))
        .await
        .unwrap();
    // Chart.js draws after the page's script has loaded the data: wait for it, with a deadline.
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let drawn = c
            .execute(
                "return !!(window.Chart && Chart.getChart('chart-daily'));",
                vec![],
            )
            .await
            .unwrap();
        if drawn.as_bool() == Some(true) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "Chart.js never drew the daily chart"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    browser.shot("charts").await;
    c.goto(&format!("{base}/admin/health")).await.unwrap();
    assert!(browser.text().await.contains("stable_token"));
    browser.shot("health").await;
    c.goto(&format!("{base}/admin/campaigns")).await.unwrap();
    browser.shot("campaigns").await;
    browser.close().await;

    // On a phone the leaderboard still fits the screen.
    let mut phone = Browser::phone("admin_phone", 390, 844).await;
    sign_in(&phone, &base).await;
    phone.shot("home").await;
    phone
        .client
        .goto(&format!("{base}/admin/leaderboard"))
        .await
        .unwrap();
    assert!(
        phone.fits_width().await,
        "the leaderboard scrolls sideways on a phone"
    );
    phone.shot("leaderboard").await;
    phone
        .client
        .goto(&format!("{base}/admin/campaigns/{id}"))
        .await
        .unwrap();
    assert!(
        phone.fits_width().await,
        "the campaign form scrolls sideways on a phone"
    );
    phone.shot("campaign").await;
    phone.close().await;
    std::fs::remove_file(background).ok();
}

/// The page's text, or "" while it is being replaced (a navigation in flight).
async fn page_text(client: &Client) -> String {
    client
        .execute(
            "return document.body ? document.body.innerText : '';",
            vec![],
        )
        .await
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

async fn wait_text(browser: &Browser, needle: &str) {
    for _ in 0..100 {
        if page_text(&browser.client).await.contains(needle) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "{needle:?} never showed: {}",
        page_text(&browser.client).await
    );
}

async fn fill_channel(browser: &Browser, base: &str) {
    let c = &browser.client;
    c.goto(&format!("{base}/admin/channels")).await.unwrap();
    fill(c, "name", "朝阳门店").await;
    click(c, "form.inline-form button[type=submit]").await;
    c.wait()
        .for_element(Locator::Css("a[href$=\"/qr.png\"]"))
        .await
        .unwrap();
}
