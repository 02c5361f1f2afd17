//! The dashboard shows people words, not the codes Fission stores: events, outcomes, channels
//! and job states in the user timeline and on the health page, in Chinese and English.

use reqwest::header::{ACCEPT_LANGUAGE, COOKIE};

use crate::admin_pages::signed_in;
use crate::helpers::openid;

/// The text of the cells and pills in `html` (what a person reads), without the markup.
fn cells(html: &str) -> Vec<String> {
    html.split('>')
        .filter_map(|piece| piece.split('<').next())
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
        .collect()
}

#[tokio::test]
async fn timeline_and_recent_pushes_are_in_words() {
    let (app, _wechat, mut operator) = signed_in().await;
    let inviter = openid("codesinv", 1);
    let friend = openid("codesfriend", 1);
    let scene = app.issue_code(&inviter).await["scene_id"].as_i64().unwrap();
    let now = chrono::Utc::now().timestamp();
    app.subscribe(&friend, Some(scene), now).await;
    app.scan(&friend, scene, now + 1).await;

    let raw = [
        "subscribe",
        "SCAN",
        "credited",
        "scan",
        "event",
        "pending",
        "sent",
        "custom",
    ];
    for page in [
        format!("/admin/users/{friend}"),
        "/admin/health".to_string(),
    ] {
        let html = operator.get(&page).await.text().await.unwrap();
        let shown = cells(&html);
        for code in raw {
            assert!(
                !shown.iter().any(|c| c == code),
                "{page} shows the raw code {code}: {shown:?}"
            );
        }
        assert!(shown.iter().any(|c| c == "关注"), "{page}: {shown:?}");
        assert!(shown.iter().any(|c| c == "邀请成功"), "{page}: {shown:?}");
    }

    let cookie = operator.cookie.clone().unwrap();
    let english = app
        .http
        .get(format!("{}/admin/users/{friend}", app.address))
        .header(COOKIE, cookie)
        .header(ACCEPT_LANGUAGE, "en")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let shown = cells(&english);
    assert!(shown.iter().any(|c| c == "Follow"), "{shown:?}");
    assert!(shown.iter().any(|c| c == "Credited"), "{shown:?}");
    assert!(
        shown.iter().any(|c| c == "Scan (already following)"),
        "{shown:?}"
    );
}
