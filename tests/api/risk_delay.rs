//! Delayed rewards through the real surface: a campaign set (on its risk page) to wait a day
//! grants nothing when a tier is reached; the follower's page shows the tier waiting with its
//! date; once the day has passed (CreateTimes in the past make it so) the job grants it if the
//! friends stayed and lets it lapse if too many left within the revoke window, leaves a blocked
//! inviter's alone, and across two instances grants each tier exactly once with one
//! `reward.granted` each.

use chrono::Utc;

use crate::admin_client::{with_admin, Operator};
use crate::helpers::{openid, Deployment, FakeWechat, TestApp};
use crate::hook_receiver::{register, Receiver};
use crate::invite::sign_in;
use crate::risk::{default_campaign, save_policy};

const DAY: i64 = 86_400;

/// The operator sets a one-day reward delay on the campaign's risk page.
async fn delay_one_day(app: &TestApp, campaign: i64) {
    let mut operator = Operator::new(app);
    operator.login().await;
    let days = |d| [("reward_delay_days", d)];
    assert_eq!(save_policy(&mut operator, campaign, &days("91")).await, 400);
    assert_eq!(save_policy(&mut operator, campaign, &days("1")).await, 303);
    let page = format!("/admin/campaigns/{campaign}/risk");
    let html = operator.get(&page).await.text().await.unwrap();
    assert!(html.contains("name=\"reward_delay_days\""), "{html}");
    assert!(html.contains("value=\"1\""), "{html}");
}

/// Three friends follow through `inviter`'s code, a minute apart from `t0`.
async fn three_friends(app: &TestApp, inviter: &str, tag: &str, t0: i64) {
    let scene = app.issue_code(inviter).await["scene_id"].as_i64().unwrap();
    for i in 0..3 {
        let r = app
            .subscribe(&openid(tag, i), Some(scene), t0 + i as i64 * 60)
            .await;
        assert_eq!(r.status(), 200);
    }
}

async fn grants(app: &TestApp, inviter: &str) -> Vec<String> {
    sqlx::query_scalar("SELECT status FROM reward_grants WHERE openid = $1 ORDER BY tier_id")
        .bind(inviter)
        .fetch_all(&app.pool)
        .await
        .unwrap()
}

async fn pending(app: &TestApp, inviter: &str) -> Vec<String> {
    sqlx::query_scalar("SELECT status FROM reward_pending WHERE openid = $1 ORDER BY tier_id")
        .bind(inviter)
        .fetch_all(&app.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_delayed_tier_is_granted_if_the_friends_stayed_and_lapses_if_they_left() {
    let wechat = FakeWechat::start(100_000, None).await;
    // The job's own timer stays out of the way: the test runs its passes.
    let deployment =
        with_admin(Deployment::new(&wechat)).set("FISSION_DELAYED_REWARDS_EVERY_SECS", "3600");
    let app = TestApp::spawn(&deployment).await;
    let campaign = default_campaign(&app).await;
    fission::db::campaigns::add_tier(&app.pool, campaign, 3, "小礼品", false)
        .await
        .unwrap();
    delay_one_day(&app, campaign).await;

    let now = Utc::now().timestamp();
    let stays = openid("dstays", 0);
    let leaves = openid("dleaves", 0);
    let recent = openid("drecent", 0);
    let blocked = openid("dblocked", 0);
    three_friends(&app, &stays, "dstayf", now - 3 * DAY).await;
    three_friends(&app, &leaves, "dleavef", now - 3 * DAY).await;
    three_friends(&app, &recent, "drecentf", now - 3600).await;
    three_friends(&app, &blocked, "dblockf", now - 3 * DAY).await;
    // One of `leaves`'s friends leaves within the revoke window: two left, the tier needs three.
    let r = app
        .unsubscribe(&openid("dleavef", 0), now - 3 * DAY + 3600)
        .await;
    assert_eq!(r.status(), 200);

    // Reaching the tier granted nothing: it waits.
    for inviter in [&stays, &leaves, &recent, &blocked] {
        assert!(grants(&app, inviter).await.is_empty(), "{inviter}");
        assert_eq!(pending(&app, inviter).await, ["waiting"], "{inviter}");
    }

    // The follower's page shows the tier waiting, with its date.
    wechat.sim.add_user(&recent, "阿近", true);
    let client = sign_in(&app, &wechat, &recent, "snsapi_base").await;
    let html = client
        .get(format!("{}/invite", app.address))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let due: chrono::DateTime<Utc> =
        sqlx::query_scalar("SELECT due_at FROM reward_pending WHERE openid = $1")
            .bind(&recent)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    let due = due
        .with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).unwrap())
        .format("%m-%d")
        .to_string();
    assert!(html.contains("小礼品"), "{html}");
    assert!(
        html.contains(&format!("等待发放：{due} 起")),
        "{due}: {html}"
    );

    // An operator blocks one inviter: the job leaves their waiting tier alone.
    let mut operator = Operator::new(&app);
    operator.login().await;
    let csrf = operator.csrf("/admin/risk").await;
    let pick = format!("{campaign}:{blocked}");
    let response = operator
        .post_form(
            "/admin/risk",
            &[("csrf", &csrf), ("action", "block"), ("pick", &pick)],
        )
        .await;
    assert_eq!(response.status(), 303);

    let settled = fission::jobs::delayed::pass(&app.app_state).await.unwrap();
    assert_eq!(settled.granted.len(), 1, "{settled:?}");
    assert_eq!(settled.lapsed, 1, "{settled:?}");
    assert_eq!(grants(&app, &stays).await, ["granted"]);
    assert_eq!(pending(&app, &stays).await, ["granted"]);
    assert!(grants(&app, &leaves).await.is_empty());
    assert_eq!(pending(&app, &leaves).await, ["lapsed"]);
    // Not due yet.
    assert!(grants(&app, &recent).await.is_empty());
    assert_eq!(pending(&app, &recent).await, ["waiting"]);
    assert!(grants(&app, &blocked).await.is_empty());
    assert_eq!(pending(&app, &blocked).await, ["waiting"]);
    let again = fission::jobs::delayed::pass(&app.app_state).await.unwrap();
    assert_eq!(again, Default::default());

    // A new friend takes `leaves` back to the tier: it waits again, from that friend's time.
    let scene = app.issue_code(&leaves).await["scene_id"].as_i64().unwrap();
    app.subscribe(&openid("dleavef", 9), Some(scene), now - 2 * DAY)
        .await;
    assert_eq!(pending(&app, &leaves).await, ["waiting"]);
    let settled = fission::jobs::delayed::pass(&app.app_state).await.unwrap();
    assert_eq!(settled.granted.len(), 1, "{settled:?}");
    assert_eq!(grants(&app, &leaves).await, ["granted"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_grant_each_delayed_tier_once_with_one_webhook_each() {
    let wechat = FakeWechat::start(100_000, None).await;
    let deployment = with_admin(Deployment::new(&wechat))
        .set("FISSION_WEBHOOK_ALLOW_PRIVATE", "true")
        .set("FISSION_DELAYED_REWARDS_EVERY_SECS", "1");
    let a = TestApp::spawn(&deployment).await;
    let b = TestApp::spawn(&deployment).await;
    let campaign = default_campaign(&a).await;
    let tier = fission::db::campaigns::add_tier(&a.pool, campaign, 3, "优惠券", true)
        .await
        .unwrap();
    let codes: Vec<String> = (0..10).map(|i| format!("DLY-{i}")).collect();
    fission::db::campaigns::add_reward_codes(&a.pool, tier.id, &codes)
        .await
        .unwrap();
    delay_one_day(&a, campaign).await;
    let receiver = Receiver::start(0).await;
    let (status, body) = register(&a, &receiver.url, "delay-secret", &["reward.granted"]).await;
    assert_eq!(status, 201, "{body}");

    let t0 = Utc::now().timestamp() - 3 * DAY;
    let inviters: Vec<String> = (0..6).map(|i| openid("dtwo", i)).collect();
    for (i, inviter) in inviters.iter().enumerate() {
        let app = if i % 2 == 0 { &a } else { &b };
        three_friends(app, inviter, &format!("dtwo{i}f"), t0 + i as i64 * 600).await;
    }
    // Both instances' timers run, and passes are forced on both at once besides.
    for _ in 0..3 {
        let (x, y) = tokio::join!(
            fission::jobs::delayed::pass(&a.app_state),
            fission::jobs::delayed::pass(&b.app_state)
        );
        x.unwrap();
        y.unwrap();
    }
    let got = receiver
        .wait_for(30, |got| {
            got.iter().filter(|g| g.event == "reward.granted").count() >= inviters.len()
        })
        .await;
    for inviter in &inviters {
        assert_eq!(grants(&a, inviter).await, ["granted"], "{inviter}");
        assert_eq!(pending(&a, inviter).await, ["granted"], "{inviter}");
    }
    let granted: i64 = sqlx::query_scalar("SELECT count(*) FROM reward_grants")
        .fetch_one(&a.pool)
        .await
        .unwrap();
    assert_eq!(granted, inviters.len() as i64);
    let codes_out: i64 =
        sqlx::query_scalar("SELECT count(*) FROM reward_codes WHERE granted_to IS NOT NULL")
            .fetch_one(&a.pool)
            .await
            .unwrap();
    assert_eq!(codes_out, inviters.len() as i64);
    // One event per grant, recorded once (not once per instance).
    let recorded: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM webhook_deliveries WHERE event_type = 'reward.granted'",
    )
    .fetch_one(&a.pool)
    .await
    .unwrap();
    assert_eq!(recorded, inviters.len() as i64);
    let mut told: Vec<String> = got
        .iter()
        .filter(|g| g.event == "reward.granted")
        .map(|g| g.json()["data"]["openid"].as_str().unwrap().to_string())
        .collect();
    told.sort();
    told.dedup();
    assert_eq!(told, inviters);
}
