//! "I won — now what?": a tier's claim instructions and in-store redemption. The operator sets
//! them in the tier form; the follower who wins sees the instructions and a redemption code on
//! the invite page; staff scan it with a phone, sign in with a staff account and redeem it once
//! (a second redemption is refused with when and by whom); the follower then sees 已核销. A
//! staff account can do nothing else in the dashboard, and nobody signed out can redeem.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use fantoccini::Locator;
use fission::routes::admin::{Access, ROUTES};

use crate::admin_client::{csrf_in, with_admin, Operator};
use crate::browser::{click, fill, Browser};
use crate::helpers::{openid, Deployment, FakeWechat, TestApp};
use crate::invite_page::{create_follower, join_through, scan_ticket, sign_in_as, wait_for_text};

const STAFF: &str = "clerk";
const STAFF_PASSWORD: &str = "counter password 42";
const REWARD: &str = "门店咖啡券";
const CLAIM: &str = "到店出示核销码，领取一杯咖啡";

/// Creates the staff account with the real `fission admin add-user --role staff`.
fn add_staff(deployment: &Deployment) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_fission"))
        .args(["admin", "add-user", "--username", STAFF, "--role", "staff"])
        .envs(deployment.env.iter())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run fission");
    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all(format!("{STAFF_PASSWORD}\n").as_bytes())
        .unwrap();
    drop(stdin);
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("staff"));
}

async fn default_campaign(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT id FROM campaigns WHERE is_default")
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

/// Waits for `openid`'s grant of the campaign's first tier.
async fn grant_of(app: &TestApp, openid: &str) -> i64 {
    for _ in 0..100 {
        let id: Option<i64> =
            sqlx::query_scalar("SELECT id FROM reward_grants WHERE openid = $1 LIMIT 1")
                .bind(openid)
                .fetch_optional(&app.pool)
                .await
                .unwrap();
        if let Some(id) = id {
            return id;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no reward granted to {openid}");
}

/// The content of the redemption QR code on the follower's page (an inline PNG).
async fn redemption_url(browser: &Browser) -> String {
    use base64::Engine;
    let src = browser
        .client
        .find(Locator::Css(".redeem-code img"))
        .await
        .expect("a redemption code on the page")
        .attr("src")
        .await
        .unwrap()
        .unwrap();
    let png = base64::engine::general_purpose::STANDARD
        .decode(src.strip_prefix("data:image/png;base64,").expect("a PNG"))
        .unwrap();
    let luma = image::load_from_memory(&png).unwrap().to_luma8();
    let mut prepared = rqrr::PreparedImage::prepare(luma);
    let grids = prepared.detect_grids();
    assert_eq!(grids.len(), 1);
    grids[0].decode().unwrap().1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_redeem_a_won_reward_once_and_the_follower_sees_it() {
    let deployment = with_admin(Deployment::sandbox());
    let app = TestApp::spawn(&deployment).await;
    add_staff(&deployment);
    let campaign = default_campaign(&app).await;

    // The operator gives the campaign an in-store tier with claim instructions.
    let mut desk = Browser::with_language("ux_redeem_operator", 1280, 900, "zh-CN").await;
    crate::ux_sessions::admin_sign_in(&desk, &app).await;
    desk.client
        .goto(&format!("{}/admin/campaigns/{campaign}", app.address))
        .await
        .unwrap();
    fill(&desk.client, "tier_threshold_0", "1").await;
    fill(&desk.client, "tier_name_0", REWARD).await;
    fill(&desk.client, "tier_claim_0", CLAIM).await;
    click(&desk.client, "[name=\"tier_store_0\"]").await;
    desk.shot("tier-form").await;
    click(&desk.client, "#campaign-form .actions button[type=submit]").await;
    wait_for_text(&desk, "已保存").await;
    let claim = desk
        .client
        .find(Locator::Css("[name=\"tier_claim_0\"]"))
        .await
        .unwrap()
        .prop("value")
        .await
        .unwrap();
    assert_eq!(claim.as_deref(), Some(CLAIM));
    let in_store = desk
        .client
        .find(Locator::Css("[name=\"tier_store_0\"]"))
        .await
        .unwrap()
        .prop("checked")
        .await
        .unwrap();
    assert_eq!(in_store.as_deref(), Some("true"));

    // The follower wins it: the instructions and a redemption code show on the page.
    let mut phone = Browser::phone("ux_redeem_follower", 390, 844).await;
    create_follower(&phone, &app, "小红").await;
    sign_in_as(&phone, &app, "小红").await;
    wait_for_text(&phone, "位好友已通过你关注").await;
    let ticket = scan_ticket(&phone).await;
    join_through(&app, &ticket, "张三").await;
    let mut text = String::new();
    for _ in 0..100 {
        phone.client.refresh().await.unwrap();
        text = wait_for_text(&phone, "位好友已通过你关注").await;
        if text.contains(CLAIM) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(text.contains(CLAIM), "{text}");
    assert!(text.contains("已获得"), "{text}");
    let url = redemption_url(&phone).await;
    let path = url
        .strip_prefix(&*app.app_state.public_url)
        .unwrap_or_else(|| panic!("{url} is not on this server"))
        .to_string();
    let token = path.strip_prefix("/admin/redeem/").expect("a staff page");
    assert!(token.len() >= 32 && token.bytes().all(|b| b.is_ascii_hexdigit()));
    assert!(phone.fits_width().await, "no sideways scrolling at 390 px");
    phone
        .client
        .execute(
            "document.querySelector('.redeem-code').scrollIntoView()",
            vec![],
        )
        .await
        .unwrap();
    phone.shot("claim-and-code").await;

    // 小红 shared her nickname (on the poster's consent page): staff see it masked.
    let winner: String = sqlx::query_scalar("SELECT openid FROM reward_grants LIMIT 1")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    fission::db::users::set_profile(&app.pool, &winner, "小红", None)
        .await
        .unwrap();

    // Staff scan it: sign in first, then straight back to the code's page.
    let mut staff = Browser::with_language("ux_redeem_staff", 390, 844, "zh-CN").await;
    staff
        .client
        .goto(&format!("{}{path}", app.address))
        .await
        .unwrap();
    wait_for_text(&staff, "登录").await;
    fill(&staff.client, "username", STAFF).await;
    fill(&staff.client, "password", STAFF_PASSWORD).await;
    staff.shot("login").await;
    click(
        &staff.client,
        "form[action=\"/admin/login\"] button[type=submit]",
    )
    .await;
    let page = wait_for_text(&staff, REWARD).await;
    assert_eq!(
        staff.client.current_url().await.unwrap().path(),
        path,
        "back on the code's page"
    );
    assert!(page.contains("小*"), "the follower, masked: {page}");
    assert!(!page.contains("小红"), "{page}");
    assert!(staff.fits_width().await, "no sideways scrolling at 390 px");
    staff.shot("redeem").await;
    click(&staff.client, "#redeem-button").await;
    let done = wait_for_text(&staff, "核销成功").await;
    assert!(done.contains(&format!("由 {STAFF} 核销")), "{done}");
    staff.shot("redeemed").await;

    // A second scan (even by an admin) finds it redeemed, with no button.
    desk.client
        .goto(&format!("{}{path}", app.address))
        .await
        .unwrap();
    let again = wait_for_text(&desk, "已于").await;
    assert!(again.contains(&format!("由 {STAFF} 核销")), "{again}");
    assert!(desk
        .client
        .find(Locator::Css("#redeem-button"))
        .await
        .is_err());
    desk.shot("second-scan").await;

    // The staff account is refused everywhere else in the dashboard.
    staff
        .client
        .goto(&format!("{}/admin/campaigns", app.address))
        .await
        .unwrap();
    let refused = wait_for_text(&staff, "核销员账号").await;
    assert!(!refused.contains(REWARD), "{refused}");
    staff.shot("refused-elsewhere").await;

    // The follower sees it redeemed, with the time, and no code any more.
    phone.client.refresh().await.unwrap();
    let after = wait_for_text(&phone, "已核销（").await;
    assert!(after.contains(CLAIM), "{after}");
    assert!(phone
        .client
        .find(Locator::Css(".redeem-code"))
        .await
        .is_err());
    phone.shot("redeemed").await;

    phone.close().await;
    staff.close().await;
    desk.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redemption_is_for_signed_in_staff_or_admins_once_and_staff_do_nothing_else() {
    let wechat = FakeWechat::start(100_000, None).await;
    let deployment = with_admin(Deployment::new(&wechat));
    let app = TestApp::spawn(&deployment).await;
    add_staff(&deployment);
    let campaign = default_campaign(&app).await;
    let store = fission::db::campaigns::add_tier(&app.pool, campaign, 1, REWARD, false)
        .await
        .unwrap();
    sqlx::query(
        "UPDATE reward_tiers SET redeem_in_store = true, claim_instructions = $2 WHERE id = $1",
    )
    .bind(store.id)
    .bind(CLAIM)
    .execute(&app.pool)
    .await
    .unwrap();
    let inviter = openid("redeeminv", 1);
    let scene = app.issue_code(&inviter).await["scene_id"].as_i64().unwrap();
    fission::db::users::set_profile(&app.pool, &inviter, "王小明", None)
        .await
        .unwrap();
    let now = chrono::Utc::now().timestamp();
    assert_eq!(
        app.subscribe(&openid("redeemfriend", 1), Some(scene), now)
            .await
            .status(),
        200
    );
    let grant = grant_of(&app, &inviter).await;
    let token =
        fission::db::redemptions::token_for(&app.pool, grant, "0123456789abcdef0123456789abcdef")
            .await
            .unwrap();
    let page = format!("/admin/redeem/{token}");

    // Nobody signed in: the login page (coming back here), and no redemption.
    let mut anonymous = Operator::new(&app);
    let to_login = anonymous.get(&page).await;
    assert_eq!(to_login.status(), 302);
    let location = to_login.headers()["location"].to_str().unwrap().to_string();
    assert_eq!(
        location,
        format!("/admin/login?next=%2Fadmin%2Fredeem%2F{token}")
    );
    let csrf = anonymous.csrf("/admin/login").await;
    assert_eq!(
        anonymous
            .post_form(&page, &[("csrf", &csrf)])
            .await
            .status(),
        401
    );
    // Signing in from there comes back to the code.
    let mut staff = Operator::new(&app);
    let csrf = staff.csrf(&location).await;
    let signed_in = staff
        .post_form(
            "/admin/login",
            &[
                ("csrf", &csrf),
                ("username", STAFF),
                ("password", STAFF_PASSWORD),
                ("next", &page),
            ],
        )
        .await;
    assert_eq!(signed_in.status(), 303);
    assert_eq!(signed_in.headers()["location"], page.as_str());

    // Everything else is refused to staff: pages, forms, exports; the home page sends them
    // to the redemption page; the API takes no dashboard session at all.
    let html = staff.get(&page).await.text().await.unwrap();
    let csrf = csrf_in(&html).unwrap();
    for route in ROUTES
        .iter()
        .filter(|r| matches!(r.access, Access::Session | Access::SessionOrBearer))
    {
        let path = format!(
            "/admin{}",
            route
                .path
                .replace("{id}", &campaign.to_string())
                .replace("{tier}", &store.id.to_string())
                .replace("{openid}", &inviter)
        );
        let response = match route.method {
            "get" => staff.get(&path).await,
            _ => {
                staff
                    .post_form(&path, &[("csrf", &csrf), ("name", "x")])
                    .await
            }
        };
        let status = response.status().as_u16();
        if route.method == "get" && path == "/admin" {
            assert_eq!(status, 302, "GET /admin");
            assert_eq!(response.headers()["location"], "/admin/redeem");
        } else {
            assert_eq!(status, 403, "{} {path} as staff", route.method);
        }
    }
    let mut api = app.http.get(format!("{}/api/v1/channels", app.address));
    if let Some(cookie) = &staff.cookie {
        api = api.header(reqwest::header::COOKIE, cookie);
    }
    assert_eq!(api.send().await.unwrap().status(), 401);
    let as_html = app
        .http
        .get(format!("{}/admin/leaderboard", app.address))
        .header(reqwest::header::COOKIE, staff.cookie.clone().unwrap())
        .header(reqwest::header::ACCEPT, "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(as_html.status(), 403);
    assert!(as_html.text().await.unwrap().contains("核销员账号"));

    // The staff page: the reward, the follower masked, the button.
    let shown = staff.get(&page).await;
    assert_eq!(shown.status(), 200);
    let html = shown.text().await.unwrap();
    assert!(html.contains(REWARD) && html.contains("王*明") && !html.contains("王小明"));
    assert!(html.contains("id=\"redeem-button\""));
    // Without the session's CSRF token nothing happens.
    assert_eq!(staff.post_form(&page, &[]).await.status(), 403);
    let redeemed = staff.post_form(&page, &[("csrf", &csrf)]).await;
    assert_eq!(redeemed.status(), 303);
    let done = staff
        .get(&format!("{page}?done=1"))
        .await
        .text()
        .await
        .unwrap();
    assert!(done.contains("id=\"redeem-done\""));
    let (by, at): (String, chrono::DateTime<chrono::Utc>) = sqlx::query_as(
        "SELECT a.username, r.redeemed_at FROM reward_redemptions r
         JOIN admin_users a ON a.id = r.redeemed_by WHERE r.grant_id = $1",
    )
    .bind(grant)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(by, STAFF);
    let when = fission::routes::admin::cn_time(at);

    // Once: a second redemption, by staff or an admin, is refused saying when and by whom.
    let again = staff.post_form(&page, &[("csrf", &csrf)]).await;
    assert_eq!(again.status(), 409);
    let html = again.text().await.unwrap();
    assert!(
        html.contains(&format!("已于 {when} 由 {STAFF} 核销")),
        "{html}"
    );
    let mut admin = Operator::new(&app);
    admin.login().await;
    let admin_csrf = admin.csrf(&page).await;
    let by_admin = admin.post_form(&page, &[("csrf", &admin_csrf)]).await;
    assert_eq!(by_admin.status(), 409);

    // A reward that is not redeemed in store cannot be redeemed; nor can an unknown code.
    sqlx::query("UPDATE reward_tiers SET redeem_in_store = false WHERE id = $1")
        .bind(store.id)
        .execute(&app.pool)
        .await
        .unwrap();
    sqlx::query("UPDATE reward_redemptions SET redeemed_at = NULL, redeemed_by = NULL")
        .execute(&app.pool)
        .await
        .unwrap();
    let not_in_store = admin.post_form(&page, &[("csrf", &admin_csrf)]).await;
    assert_eq!(not_in_store.status(), 409);
    assert!(not_in_store
        .text()
        .await
        .unwrap()
        .contains("redeem-refused"));
    let unknown = admin
        .get("/admin/redeem/ffffffffffffffffffffffffffffffff")
        .await;
    assert_eq!(unknown.status(), 404);
}
