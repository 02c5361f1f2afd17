//! Where a follower stands: their rank, the top 10 (names masked) and how many more invites
//! reach the next place, on the invite page in a phone-sized browser.

use chrono::Utc;
use fantoccini::Locator;
use fission::db;

use crate::browser::Browser;
use crate::helpers::{openid, Deployment, TestApp, TOKEN};
use crate::invite_page::{create_follower, join_through, scan_ticket, sign_in_as, wait_for_text};

/// Ten inviters ahead: 王小明 with 5 invites, 李雷 with 4, eight more with 3.
async fn seed_board(app: &TestApp) {
    let now = Utc::now().timestamp();
    let mut inviters = vec![("王小明".to_string(), 5), ("李雷".to_string(), 4)];
    inviters.extend((0..8).map(|i| (format!("邀请达人{i}"), 3)));
    for (n, (name, friends)) in inviters.iter().enumerate() {
        let inviter = openid("rankinv", n);
        let scene = app.issue_code(&inviter).await["scene_id"].as_i64().unwrap();
        db::users::set_profile(&app.pool, &inviter, name, None)
            .await
            .unwrap();
        for i in 0..*friends {
            let friend = openid(&format!("rankf{n}x"), i);
            let pushed = app.subscribe(&friend, Some(scene), now + n as i64).await;
            assert_eq!(pushed.status(), 200);
        }
    }
}

async fn text_of(browser: &Browser, css: &str) -> String {
    browser
        .client
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|_| panic!("nothing matches {css}"))
        .text()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_invite_page_shows_rank_top_ten_and_the_way_up() {
    // The test's own pushes are signed with the helpers' callback token.
    let app = TestApp::spawn(&Deployment::sandbox().set("WECHAT_TOKEN", TOKEN)).await;
    seed_board(&app).await;
    let campaign = db::campaigns::active_at(&app.pool, Utc::now())
        .await
        .unwrap()
        .unwrap();
    db::campaigns::add_tier(&app.pool, campaign.id, 6, "定制帆布袋", false)
        .await
        .unwrap();

    let mut browser = Browser::phone("invite_rank", 390, 844).await;
    create_follower(&browser, &app, "小红").await;
    sign_in_as(&browser, &app, "小红").await;
    wait_for_text(&browser, "位好友已通过你关注").await;
    // Not on the board yet.
    let standing = text_of(&browser, "#standing").await;
    assert!(standing.contains("再邀请 1 位好友即可上榜"), "{standing}");

    let ticket = scan_ticket(&browser).await;
    for friend in ["张三丰", "李小龙"] {
        join_through(&app, &ticket, friend).await;
    }
    browser.client.refresh().await.unwrap();
    wait_for_text(&browser, "位好友已通过你关注").await;

    let standing = text_of(&browser, "#standing").await;
    assert!(standing.contains("第 11 名"), "{standing}");
    assert!(
        standing.contains("再邀请 2 位好友可升到第 10 名"),
        "{standing}"
    );
    let top: Vec<String> = {
        let mut rows = Vec::new();
        for li in browser
            .client
            .find_all(Locator::Css("#top10 li"))
            .await
            .unwrap()
        {
            rows.push(li.text().await.unwrap());
        }
        rows
    };
    assert_eq!(top.len(), 10, "{top:?}");
    assert!(
        top[0].contains('1') && top[0].contains("王*明") && top[0].contains('5'),
        "{top:?}"
    );
    assert!(top[1].contains("李*"), "{top:?}");
    assert!(
        !top.iter().any(|r| r.contains("王小明")),
        "names are masked"
    );
    // The tier is still shown as the next reward.
    let next = text_of(&browser, "#next-tier").await;
    assert!(next.contains("再邀请 4 位好友"), "{next}");
    assert!(
        browser.fits_width().await,
        "no sideways scrolling at 390 px"
    );
    browser
        .client
        .execute(
            "document.querySelector('#standing').scrollIntoView()",
            vec![],
        )
        .await
        .unwrap();
    browser.shot("rank-and-top10").await;
    browser.close().await;
}
