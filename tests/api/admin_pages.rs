//! The dashboard's pages over HTTP: leaderboard filters, campaign validation and uploads,
//! channel QR codes at print size, the retry button, WeChat call tallies and chart data.

use std::io::Cursor;

use chrono::Utc;
use serde_json::Value;

use crate::admin_client::{csrf_in, with_admin, Operator};
use crate::helpers::{openid, Deployment, FakeWechat, TestApp};

pub async fn signed_in() -> (TestApp, FakeWechat, Operator) {
    signed_in_to(|d| d).await
}

async fn signed_in_to(
    adjust: impl FnOnce(Deployment) -> Deployment,
) -> (TestApp, FakeWechat, Operator) {
    let wechat = FakeWechat::start(100_000, None).await;
    let app = TestApp::spawn(&adjust(with_admin(Deployment::new(&wechat)))).await;
    let mut operator = Operator::new(&app);
    operator.login().await;
    (app, wechat, operator)
}

/// Credits `friends` follows to a new inviter called `name`; returns the inviter's openid.
async fn inviter_with(app: &TestApp, tag: &str, name: &str, friends: usize) -> String {
    let inviter = openid(tag, 0);
    let scene = app.issue_code(&inviter).await["scene_id"].as_i64().unwrap();
    fission::db::users::set_profile(&app.pool, &inviter, name, None)
        .await
        .unwrap();
    let now = Utc::now().timestamp();
    for i in 0..friends {
        app.subscribe(&openid(&format!("{tag}f"), i), Some(scene), now)
            .await;
    }
    inviter
}

/// A multipart body with text fields and one file field (reqwest here has no multipart).
fn multipart(fields: &[(&str, &str)], file: Option<(&str, &str, &[u8])>) -> (String, Vec<u8>) {
    let boundary = format!("----fission{}", uuid::Uuid::new_v4().simple());
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n")
                .as_bytes(),
        );
    }
    if let Some((name, filename, data)) = file {
        body.extend(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{filename}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend(data);
        body.extend(b"\r\n");
    }
    body.extend(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

async fn post_multipart(
    operator: &Operator,
    path: &str,
    content_type: String,
    body: Vec<u8>,
) -> reqwest::Response {
    operator
        .http
        .post(format!("{}{path}", operator.base))
        .header("content-type", content_type)
        .header("cookie", operator.cookie.clone().unwrap())
        .body(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn the_leaderboard_filters_by_campaign_dates_and_search() {
    let (app, _wechat, mut operator) = signed_in().await;
    inviter_with(&app, "lbA", "张三丰", 3).await;
    let second = inviter_with(&app, "lbB", "50%_off", 2).await;
    let page = operator
        .get("/admin/leaderboard")
        .await
        .text()
        .await
        .unwrap();
    assert!(page.find("张三丰").unwrap() < page.find("50%_off").unwrap());
    // Search keeps the whole board's rank; wildcards in the term are literal.
    let found = operator
        .get("/admin/leaderboard?campaign=all&q=%25_off")
        .await
        .text()
        .await
        .unwrap();
    assert!(found.contains("50%_off") && !found.contains("张三丰"));
    assert!(
        found.contains("<td class=\"num rank\">2</td>"),
        "rank 2 kept"
    );
    // The same in the running campaign's board (ranked on the index, not by a window).
    let in_campaign = operator
        .get("/admin/leaderboard?q=%25_off")
        .await
        .text()
        .await
        .unwrap();
    assert!(in_campaign.contains("50%_off") && !in_campaign.contains("张三丰"));
    assert!(
        in_campaign.contains("<td class=\"num rank\">2</td>"),
        "rank 2 kept"
    );
    let by_openid = operator
        .get(&format!("/admin/leaderboard?campaign=all&q={second}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(by_openid.contains("50%_off"));
    // A range in the past has no credits; one including today has them all.
    let past = operator
        .get("/admin/leaderboard?from=2020-01-01&to=2020-12-31")
        .await
        .text()
        .await
        .unwrap();
    assert!(!past.contains("张三丰"));
    // Dates are China days.
    let today = (Utc::now() + chrono::Duration::hours(8))
        .format("%Y-%m-%d")
        .to_string();
    let current = operator
        .get(&format!(
            "/admin/leaderboard?campaign=all&from=2020-01-01&to={today}"
        ))
        .await
        .text()
        .await
        .unwrap();
    assert!(current.contains("张三丰") && current.contains("50%_off"));
    let bad = operator.get("/admin/leaderboard?from=yesterday").await;
    assert!(bad.text().await.unwrap().contains("日期格式"));
    // English when the browser prefers it.
    let english = operator
        .http
        .get(format!("{}/admin/leaderboard", app.address))
        .header("cookie", operator.cookie.clone().unwrap())
        .header("accept-language", "en-US,en;q=0.9,zh;q=0.5")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(english.contains("<html lang=\"en\">") && english.contains("Leaderboard"));
}

#[tokio::test]
async fn a_refused_campaign_keeps_what_was_typed_and_uploads_are_checked() {
    let (app, _wechat, mut operator) = signed_in().await;
    let csrf = operator.csrf("/admin/campaigns/new").await;
    let mut form = vec![
        ("csrf", csrf.as_str()),
        ("name", "年终冲刺"),
        ("starts_at", "2026-12-01T00:00"),
        ("ends_at", "2026-11-01T00:00"),
        ("revoke_window_days", "7"),
        ("welcome_text", "欢迎 {inviter}"),
        ("credit_text", "{invitee} 来了 {count}"),
        ("reward_text", "奖励 {reward} {code}"),
        ("rules", "规则 <b>不是 HTML</b>"),
        ("template_id", ""),
        ("qr_x", "465"),
        ("qr_y", "1000"),
        ("qr_size", "280"),
        ("avatar_x", "60"),
        ("avatar_y", "1040"),
        ("avatar_size", "120"),
        ("nick_x", "200"),
        ("nick_y", "1075"),
        ("nick_size", "40"),
        ("nick_color", "#ffffff"),
        ("tier_threshold_0", "5"),
        ("tier_name_0", "周边礼包"),
        ("tier_codes_0", "on"),
    ];
    let refused = operator.post_form("/admin/campaigns", &form).await;
    assert_eq!(refused.status(), 422);
    let html = refused.text().await.unwrap();
    assert!(html.contains("结束时间须晚于开始时间"));
    assert!(html.contains("value=\"周边礼包\"") && html.contains("value=\"年终冲刺\""));
    assert!(
        html.contains("规则 &#60;b&#62;不是 HTML&#60;/b&#62;") || html.contains("规则 &lt;b&gt;")
    );
    form[3] = ("ends_at", "2026-12-31T23:59");
    let created = operator.post_form("/admin/campaigns", &form).await;
    assert_eq!(created.status(), 303);
    let location = created.headers()["location"].to_str().unwrap().to_string();
    let id: i64 = location
        .trim_start_matches("/admin/campaigns/")
        .trim_end_matches("?saved=1")
        .parse()
        .unwrap();
    let tier: i64 = sqlx::query_scalar("SELECT id FROM reward_tiers WHERE campaign_id = $1")
        .bind(id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let page = operator.get(&location).await.text().await.unwrap();
    let csrf = csrf_in(&page).unwrap();

    // Not an image, then a real one.
    let (ct, body) = multipart(
        &[("csrf", &csrf)],
        Some(("background", "x.png", b"GIF89a not a png")),
    );
    let path = format!("/admin/campaigns/{id}/poster-background");
    let refused = post_multipart(&operator, &path, ct, body).await;
    assert_eq!(refused.status(), 422);
    assert!(refused
        .text()
        .await
        .unwrap()
        .contains("只接受 PNG 或 JPEG 图片"));
    let mut jpeg = Vec::new();
    image::DynamicImage::new_rgb8(750, 1334)
        .write_to(&mut Cursor::new(&mut jpeg), image::ImageFormat::Jpeg)
        .unwrap();
    let (ct, body) = multipart(&[("csrf", &csrf)], Some(("background", "bg.jpg", &jpeg)));
    assert_eq!(
        post_multipart(&operator, &path, ct, body).await.status(),
        303
    );
    let preview = operator
        .get(&format!("/admin/campaigns/{id}/poster-preview.png"))
        .await;
    assert_eq!(preview.status(), 200);
    assert_eq!(preview.headers()["content-type"], "image/jpeg");
    // The preview is the real poster renderer's output on the uploaded background: same size,
    // with a sample QR code where the layout puts it.
    let rendered = image::load_from_memory(&preview.bytes().await.unwrap()).unwrap();
    assert_eq!((rendered.width(), rendered.height()), (750, 1334));
    let mut prepared = rqrr::PreparedImage::prepare(rendered.to_luma8());
    let grids = prepared.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code on the preview");
    assert!(grids[0]
        .decode()
        .unwrap()
        .1
        .ends_with("/sandbox/scan?ticket=preview"));

    // Codes from a file and a pasted list; duplicates count once.
    let codes_path = format!("/admin/campaigns/{id}/tiers/{tier}/codes");
    let (ct, body) = multipart(
        &[("csrf", &csrf), ("codes", "C-3\nC-4")],
        Some(("file", "codes.csv", b"\xef\xbb\xbfC-1\r\nC-2\r\nC-3\r\n")),
    );
    assert_eq!(
        post_multipart(&operator, &codes_path, ct, body)
            .await
            .status(),
        303
    );
    let stock = fission::db::campaigns::stock(&app.pool, tier)
        .await
        .unwrap();
    assert_eq!(stock, 4);
    let page = operator.get(&location).await.text().await.unwrap();
    assert!(page.contains(">4</span>"), "stock shown");
    // Without the token the upload never reaches the handler.
    let (ct, body) = multipart(&[("codes", "C-9")], None);
    assert_eq!(
        post_multipart(&operator, &codes_path, ct, body)
            .await
            .status(),
        403
    );
}

#[tokio::test]
async fn channel_codes_download_at_print_size() {
    let (app, _wechat, mut operator) = signed_in().await;
    let csrf = operator.csrf("/admin/channels").await;
    let created = operator
        .post_form("/admin/channels", &[("csrf", &csrf), ("name", "朝阳门店")])
        .await;
    assert_eq!(created.status(), 303);
    let taken = operator
        .post_form("/admin/channels", &[("csrf", &csrf), ("name", "朝阳门店")])
        .await;
    assert_eq!(taken.status(), 422);
    assert!(taken.text().await.unwrap().contains("已有同名渠道"));
    let channel = fission::db::codes::channels(&app.pool)
        .await
        .unwrap()
        .remove(0);
    let code = fission::db::codes::by_channel(&app.pool, channel.id)
        .await
        .unwrap()
        .unwrap();
    let png = operator
        .get(&format!("/admin/channels/{}/qr.png", channel.id))
        .await
        .bytes()
        .await
        .unwrap();
    let image = image::load_from_memory(&png).unwrap().to_luma8();
    assert!(image.width() >= 1000, "{} px", image.width());
    let mut prepared = rqrr::PreparedImage::prepare(image);
    let (_, content) = prepared.detect_grids()[0].decode().unwrap();
    assert_eq!(content, code.url);
    // A follow through it shows in the channel's numbers.
    app.push(&fission::wechat::outgoing::event(
        "gh_test",
        &openid("chanfollow", 1),
        Utc::now().timestamp(),
        "subscribe",
        Some(format!("qrscene_{}", code.scene_str.clone().unwrap())),
        Some(code.ticket.clone()),
    ))
    .await;
    let page = operator.get("/admin/channels").await.text().await.unwrap();
    assert!(
        page.contains("<td class=\"num\">1</td>"),
        "one follow shown"
    );
}

#[tokio::test]
async fn health_shows_call_tallies_and_failed_messages_can_be_retried() {
    // No worker here: a retried message stays queued for the test to see.
    let (app, _wechat, mut operator) = signed_in_to(|d| d.set("FISSION_WORKERS", "false")).await;
    app.issue_code(&openid("health", 1)).await;
    let mut written = Default::default();
    fission::jobs::wechat_calls::flush(&app.app_state, &mut written)
        .await
        .unwrap();
    // A second flush with nothing new writes nothing more.
    fission::jobs::wechat_calls::flush(&app.app_state, &mut written)
        .await
        .unwrap();
    let calls: i64 = sqlx::query_scalar(
        "SELECT calls FROM wechat_api_calls WHERE api = 'qrcode/create' AND errcode = 0",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(calls, 1);
    let job: i64 = sqlx::query_scalar(
        "INSERT INTO outbox (kind, payload, status, attempts, last_error, done_at)
         VALUES ('message', '{}', 'failed', 5, 'WeChat API error 45015', now()) RETURNING id",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    let page = operator.get("/admin/health").await.text().await.unwrap();
    assert!(page.contains("qrcode/create") && page.contains("WeChat API error 45015"));
    let csrf = csrf_in(&page).unwrap();
    let retried = operator
        .post_form(&format!("/admin/outbox/{job}/retry"), &[("csrf", &csrf)])
        .await;
    assert_eq!(retried.status(), 303);
    let status: String = sqlx::query_scalar("SELECT status FROM outbox WHERE id = $1")
        .bind(job)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(status, "pending");
    let again = operator
        .post_form(&format!("/admin/outbox/{job}/retry"), &[("csrf", &csrf)])
        .await;
    assert_eq!(again.status(), 404, "only a failed message can be retried");
}

#[tokio::test]
async fn chart_data_splits_follows_by_source() {
    let (app, _wechat, mut operator) = signed_in().await;
    inviter_with(&app, "chartinv", "Chart", 3).await;
    app.subscribe(&openid("plainfollow", 1), None, Utc::now().timestamp())
        .await;
    let data: Value = operator
        .get("/admin/charts.json?days=7")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(data["days"].as_array().unwrap().len(), 7);
    let last = |series: &str| data[series].as_array().unwrap().last().unwrap().as_i64();
    assert_eq!(last("referred"), Some(3));
    assert_eq!(last("other"), Some(1));
    assert_eq!(last("channel"), Some(0));
    assert_eq!(data["funnel"]["follows"], 3);
    assert_eq!(data["funnel"]["scans"], 3);
    // Three credits by the one follower holding an invite code.
    assert_eq!(data["k_factor"].as_array().unwrap().last().unwrap(), 3.0);
}

/// A dashboard error is a page in the operator's language for a browser, JSON for a script.
#[tokio::test]
async fn errors_are_pages_for_browsers_and_json_for_scripts() {
    let (_app, _wechat, operator) = signed_in().await;
    let cookie = operator.cookie.clone().expect("signed in");
    let url = format!("{}/admin/campaigns/999999", operator.base);
    let ask = |accept: &'static str, language: &'static str| {
        operator
            .http
            .get(&url)
            .header("cookie", &cookie)
            .header("accept", accept)
            .header("accept-language", language)
            .send()
    };

    let page = ask("text/html,application/xhtml+xml", "en-US,en;q=0.9")
        .await
        .unwrap();
    assert_eq!(page.status(), 404);
    let content_type = page.headers()["content-type"].to_str().unwrap().to_string();
    assert!(content_type.starts_with("text/html"), "{content_type}");
    let html = page.text().await.unwrap();
    for expected in [
        "Something went wrong",
        "no such campaign",
        "href=\"/admin\"",
    ] {
        assert!(html.contains(expected), "{expected} missing: {html}");
    }
    let zh = ask("text/html", "zh-CN")
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(zh.contains("出错了"), "{zh}");
    let json: Value = ask("application/json", "zh-CN")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(json["error"], "no such campaign");
}
