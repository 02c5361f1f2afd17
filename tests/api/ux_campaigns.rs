//! Campaigns in the same period: the second is refused, saying which campaign it collides with;
//! the default campaign only stands in while no other runs, and the list says so.

use crate::admin_pages::signed_in;

pub fn campaign_form<'a>(
    csrf: &'a str,
    name: &'a str,
    starts: &'a str,
    ends: &'a str,
) -> Vec<(&'a str, &'a str)> {
    vec![
        ("csrf", csrf),
        ("name", name),
        ("starts_at", starts),
        ("ends_at", ends),
        ("revoke_window_days", "7"),
        ("welcome_text", "欢迎关注！"),
        (
            "credit_text",
            "{invitee}通过你的邀请关注了公众号，你已邀请 {count} 位好友。",
        ),
        ("reward_text", "你获得了奖励：{reward}"),
        ("rules", ""),
        ("template_id", ""),
        ("qr_x", "465"),
        ("qr_y", "1000"),
        ("qr_size", "240"),
        ("avatar_x", "60"),
        ("avatar_y", "1040"),
        ("avatar_size", "120"),
        ("nick_x", "200"),
        ("nick_y", "1075"),
        ("nick_size", "40"),
        ("nick_color", "#ffffff"),
    ]
}

#[tokio::test]
async fn a_campaign_overlapping_another_is_refused_with_its_name() {
    let (app, _wechat, mut operator) = signed_in().await;
    let csrf = operator.csrf("/admin/campaigns/new").await;
    let first = campaign_form(&csrf, "春节拉新", "2027-01-20T00:00", "2027-02-20T00:00");
    let created = operator.post_form("/admin/campaigns", &first).await;
    assert_eq!(created.status(), 303);

    // Starts before the first ends: refused, naming it, everything typed kept.
    let second = campaign_form(&csrf, "元宵冲刺", "2027-02-10T00:00", "");
    let refused = operator.post_form("/admin/campaigns", &second).await;
    assert_eq!(refused.status(), 422);
    let html = refused.text().await.unwrap();
    let error = &html[html
        .find("id=\"overlap\"")
        .expect("the overlap is explained")..];
    assert!(
        error[..error.find("</p>").unwrap()].contains("春节拉新"),
        "{error}"
    );
    assert!(html.contains("value=\"元宵冲刺\""));
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM campaigns WHERE NOT is_default")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(count, 1);

    // Starting when the first ends is fine (periods are half-open).
    let after = campaign_form(&csrf, "元宵冲刺", "2027-02-20T00:00", "");
    let created = operator.post_form("/admin/campaigns", &after).await;
    assert_eq!(created.status(), 303);

    // Moving the first campaign into the second's period is refused as well.
    let id: i64 = sqlx::query_scalar("SELECT id FROM campaigns WHERE name = '春节拉新'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let moved = campaign_form(&csrf, "春节拉新", "2027-01-20T00:00", "2027-03-01T00:00");
    let refused = operator
        .post_form(&format!("/admin/campaigns/{id}"), &moved)
        .await;
    assert_eq!(refused.status(), 422);
    let html = refused.text().await.unwrap();
    assert!(html.contains("id=\"overlap\""), "{html}");
    assert!(
        html.contains("2027-02-20 00:00"),
        "the other's start, China time: {html}"
    );

    // The list explains the default campaign's part.
    let list = operator.get("/admin/campaigns").await.text().await.unwrap();
    assert!(
        list.contains("默认活动只在没有其他活动进行时生效"),
        "{list}"
    );
}

#[tokio::test]
async fn ending_a_campaign_is_confirmed_showing_what_followers_will_see() {
    let (app, _wechat, mut operator) = signed_in().await;
    let csrf = operator.csrf("/admin/campaigns/new").await;
    let start = (chrono::Utc::now() - chrono::Duration::hours(1))
        .with_timezone(&fission::domain::time::china())
        .format("%Y-%m-%dT%H:%M")
        .to_string();
    let form = campaign_form(&csrf, "春季拉新", &start, "");
    let created = operator.post_form("/admin/campaigns", &form).await;
    assert_eq!(created.status(), 303);
    let id: i64 = sqlx::query_scalar("SELECT id FROM campaigns WHERE name = '春季拉新'")
        .fetch_one(&app.pool)
        .await
        .unwrap();

    // The edit page offers to end it; the confirmation says what followers will see next.
    let edit = operator
        .get(&format!("/admin/campaigns/{id}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        edit.contains(&format!("/admin/campaigns/{id}/end")),
        "{edit}"
    );
    let confirm = operator
        .get(&format!("/admin/campaigns/{id}/end"))
        .await
        .text()
        .await
        .unwrap();
    let start_at = confirm
        .find("id=\"after-end\"")
        .expect("what followers see");
    let after = &confirm[start_at..start_at + confirm[start_at..].find("</p>").unwrap()];
    assert!(after.contains("默认活动"), "{after}");
    assert!(after.contains("从 0 开始"), "{after}");

    let csrf = operator.csrf(&format!("/admin/campaigns/{id}/end")).await;
    let ended = operator
        .post_form(&format!("/admin/campaigns/{id}/end"), &[("csrf", &csrf)])
        .await;
    assert_eq!(ended.status(), 303);
    let running: String = sqlx::query_scalar(
        "SELECT name FROM campaigns WHERE starts_at <= now() AND (ends_at IS NULL OR ends_at > now())
         ORDER BY is_default ASC LIMIT 1",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(running, "默认活动");
    let list = operator.get("/admin/campaigns").await.text().await.unwrap();
    assert!(list.contains("已结束"), "{list}");

    // The default campaign is the stand-in: it cannot be ended.
    let default: i64 = sqlx::query_scalar("SELECT id FROM campaigns WHERE is_default")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let refused = operator
        .post_form(
            &format!("/admin/campaigns/{default}/end"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(refused.status(), 409);
}
