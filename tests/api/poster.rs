//! Posters: rendered once per set of inputs and kept in storage, the QR code inside them scans,
//! and the keyword / menu reply sends them through WeChat with one upload per poster.

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use fission::db;
use fission::sandbox::{InboxBody, Via};
use fission::wechat::message::Push;
use fission::wechat::outgoing::event;
use reqwest::header::{ETAG, IF_NONE_MATCH};

use crate::helpers::{openid, Deployment, FakeWechat, TestApp};
use crate::invite::{decode_qr, sign_in};

async fn start() -> (TestApp, FakeWechat, PathBuf) {
    let wechat = FakeWechat::start(100_000, None).await;
    let deployment = Deployment::new(&wechat);
    let storage = PathBuf::from(
        deployment.env["FISSION_STORAGE"]
            .strip_prefix("file://")
            .expect("file storage in tests"),
    );
    let app = TestApp::spawn(&deployment).await;
    (app, wechat, storage)
}

/// Stored posters and the time each was last written.
fn stored_posters(storage: &std::path::Path) -> Vec<(String, SystemTime)> {
    let mut found: Vec<_> = std::fs::read_dir(storage.join("poster"))
        .map(|dir| {
            dir.filter_map(Result::ok)
                .map(|e| {
                    let modified = e.metadata().unwrap().modified().unwrap();
                    (e.file_name().to_string_lossy().into_owned(), modified)
                })
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found
}

#[tokio::test]
async fn a_poster_is_rendered_once_and_again_when_an_input_changes() {
    let (app, wechat, storage) = start().await;
    let alice = openid("posterA", 1);
    wechat.sim.add_user(&alice, "阿丽", true);
    let client = sign_in(&app, &wechat, &alice, "snsapi_userinfo").await;
    let get = || async {
        let response = client
            .get(format!("{}/invite/poster.png", app.address))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "image/jpeg");
        let etag = response.headers()[ETAG].to_str().unwrap().to_string();
        (etag, response.bytes().await.unwrap())
    };

    let (etag, first) = get().await;
    assert!(first.len() <= 300 * 1024, "{} bytes", first.len());
    let url = app.issue_code(&alice).await["url"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(decode_qr(&first), vec![url]);
    let poster = image::load_from_memory(&first).unwrap();
    assert_eq!((poster.width(), poster.height()), (750, 1334));
    let after_first = stored_posters(&storage);
    assert_eq!(after_first.len(), 1);

    // Repeats are storage hits: same bytes, no new object, the object not rewritten.
    for _ in 0..3 {
        let (again_etag, again) = get().await;
        assert_eq!(again, first);
        assert_eq!(again_etag, etag);
    }
    assert_eq!(stored_posters(&storage), after_first);
    let revalidated = client
        .get(format!("{}/invite/poster.png", app.address))
        .header(IF_NONE_MATCH, &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(revalidated.status(), 304);

    // A new nickname is a new poster.
    let user = db::users::get(&app.pool, &fission::domain::OpenId::parse(&alice).unwrap())
        .await
        .unwrap()
        .unwrap();
    db::users::set_profile(&app.pool, &alice, "阿丽改名了", user.avatar_url.as_deref())
        .await
        .unwrap();
    let (renamed_etag, renamed) = get().await;
    assert_ne!(renamed, first);
    assert_ne!(renamed_etag, etag);
    assert_eq!(stored_posters(&storage).len(), 2);

    // So is a new background for the campaign.
    let background = image::RgbImage::from_pixel(750, 1334, image::Rgb([20, 60, 160]));
    let mut png = Vec::new();
    image::DynamicImage::ImageRgb8(background)
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    let key = app
        .app_state
        .storage
        .put("background", "png", png)
        .await
        .unwrap();
    sqlx::query("UPDATE campaigns SET poster_background_key = $1")
        .bind(&key)
        .execute(&app.pool)
        .await
        .unwrap();
    let (_, blue) = get().await;
    assert_ne!(blue, renamed);
    assert_eq!(stored_posters(&storage).len(), 3);
    let blue = image::load_from_memory(&blue).unwrap().to_rgb8();
    let corner = blue.get_pixel(5, 5);
    assert!(
        corner[2] > 120 && corner[0] < 60,
        "background not used: {corner:?}"
    );
    let (_, again) = get().await;
    assert_eq!(stored_posters(&storage).len(), 3);
    assert_eq!(image::load_from_memory(&again).unwrap().to_rgb8(), blue);
}

fn text_push(openid: &str, content: &str) -> Push {
    Push {
        to_user: "gh_test".into(),
        from_user: openid.into(),
        create_time: chrono::Utc::now().timestamp(),
        msg_type: "text".into(),
        event: None,
        event_key: None,
        ticket: None,
        content: Some(content.into()),
        msg_id: Some(rand::random::<i64>().abs()),
        subscriptions: Vec::new(),
    }
}

fn media_id_of(reply: &str) -> Option<String> {
    let start = reply.find("<MediaId><![CDATA[")? + "<MediaId><![CDATA[".len();
    let end = reply[start..].find("]]>")? + start;
    Some(reply[start..end].to_string())
}

#[tokio::test]
async fn the_poster_keyword_gets_an_image_reply_and_reuses_the_upload() {
    let (app, wechat, _) = start().await;
    let alice = openid("keyword", 1);
    wechat.sim.add_user(&alice, "阿丽", true);
    let http = reqwest::Client::new();

    // How fast the reply comes is measured by bench/invite.sh, not asserted here.
    let reply = app
        .push(&text_push(&alice, "海报"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        reply.contains("<MsgType><![CDATA[image]]></MsgType>"),
        "{reply}"
    );
    assert!(reply.contains(&format!("<ToUserName><![CDATA[{alice}]]>")));
    let media_id = media_id_of(&reply).expect("a MediaId");
    // The stand-in knows that media: it is the poster, as uploaded.
    let media = http
        .get(format!("{}/media/{media_id}", wechat.base))
        .send()
        .await
        .unwrap();
    assert_eq!(media.status(), 200);
    let bytes = media.bytes().await.unwrap();
    assert!(bytes.starts_with(&[0xFF, 0xD8, 0xFF]));
    assert_eq!(wechat.sim.calls("media/upload"), 1);

    // Again (a new message, and the menu button): the same media_id, no second upload.
    let again = app
        .push(&text_push(&alice, " 海报 "))
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(media_id_of(&again).as_deref(), Some(media_id.as_str()));
    let click = event(
        "gh_test",
        &alice,
        chrono::Utc::now().timestamp() + 1,
        "CLICK",
        Some("MY_POSTER".into()),
        None,
    );
    let clicked = app.push(&click).await.text().await.unwrap();
    assert_eq!(media_id_of(&clicked).as_deref(), Some(media_id.as_str()));
    assert_eq!(wechat.sim.calls("media/upload"), 1);

    // Anything else is not a poster request.
    let other = app
        .push(&text_push(&alice, "海报在哪"))
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(other, "success");
    assert_eq!(wechat.sim.calls("media/upload"), 1);
    // The fallback jobs were cancelled by the passive replies: nothing more gets sent.
    let pending: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM outbox WHERE kind = 'poster' AND status = 'pending'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(pending, 0);
    assert_eq!(wechat.sim.calls("message/custom/send"), 0);
}

#[tokio::test]
async fn a_poster_not_ready_in_time_follows_as_a_customer_service_message() {
    let (app, wechat, _) = start().await;
    let bob = openid("keywordlate", 1);
    wechat.sim.add_user(&bob, "阿波", true);
    // The first upload fails, so the passive reply cannot carry the image.
    wechat.sim.fail_next("media/upload", 45009, 1);
    let reply = app
        .push(&text_push(&bob, "海报"))
        .await
        .text()
        .await
        .unwrap();
    assert!(reply.contains("海报生成中，请稍候"), "{reply}");
    assert!(reply.contains("<MsgType><![CDATA[text]]></MsgType>"));

    // The outbox job sends it as an image message shortly after.
    let deadline = Instant::now() + Duration::from_secs(15);
    let image = loop {
        let found = wechat.sim.inbox(&bob).into_iter().find_map(|m| match m {
            m if m.via == Via::Custom => match m.body {
                InboxBody::Image { media_id } => Some(media_id),
                _ => None,
            },
            _ => None,
        });
        if let Some(media_id) = found {
            break media_id;
        }
        assert!(
            Instant::now() < deadline,
            "no image message: {:?}",
            wechat.sim.inbox(&bob)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(!image.is_empty());
    assert_eq!(wechat.sim.calls("media/upload"), 2);
    let status: String = sqlx::query_scalar("SELECT status FROM outbox WHERE kind = 'poster'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(status, "sent");
}
