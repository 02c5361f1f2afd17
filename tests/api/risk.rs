//! Risk review through the real surface: a scripted farm (30 fresh accounts through one code
//! within 40 s, 60% of them leaving within a day) beside honest inviters (a friend every few
//! minutes, few leaving). Under "hold" the farm is flagged and its rewards held, and approving
//! grants exactly what it reached; under "block" it is blocked, its credits cancelled in the
//! ledger, the board re-ranked (as `rebuild-stats` agrees) and its reward code back in the
//! pool. The honest inviters are never touched.

use chrono::Utc;
use fission::db::risk::PolicyRow;
use serde_json::Value;

use crate::admin_client::{with_admin, Operator};
use crate::helpers::{openid, Deployment, FakeWechat, TestApp};

const DAY: i64 = 86_400;

pub async fn default_campaign(app: &TestApp) -> i64 {
    sqlx::query("UPDATE campaigns SET starts_at = '2020-01-01' WHERE is_default")
        .execute(&app.pool)
        .await
        .unwrap();
    sqlx::query_scalar("SELECT id FROM campaigns WHERE is_default")
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

pub async fn set_policy(app: &TestApp, campaign: i64, policy: &str) {
    let row = PolicyRow {
        risk_policy: policy.into(),
        risk_per_minute: 10,
        risk_per_hour: 60,
        risk_left_percent: 50,
        risk_left_min_friends: 10,
        risk_block_per_minute: 20,
        block_text: "你的邀请记录异常，已被取消。".into(),
        reward_delay_days: 0,
        risk_silent_percent: 90,
        // The scene-burst signal (tests/api/risk_burst.rs) stays off: these scripts are about
        // velocity and leaving friends.
        risk_burst_min: 0,
        risk_burst_percent: 80,
    };
    assert!(fission::db::risk::set_policy(&app.pool, campaign, &row)
        .await
        .unwrap());
}

/// The operator saves the campaign's risk page: the default campaign's policy with `changes`
/// in place of (or besides) its fields. The answer's status.
pub async fn save_policy(
    operator: &mut Operator,
    campaign: i64,
    changes: &[(&str, &str)],
) -> reqwest::StatusCode {
    let page = format!("/admin/campaigns/{campaign}/risk");
    let csrf = operator.csrf(&page).await;
    let mut form = vec![
        ("csrf", csrf.as_str()),
        ("risk_policy", "flag"),
        ("risk_per_minute", "10"),
        ("risk_per_hour", "60"),
        ("risk_left_percent", "50"),
        ("risk_left_min_friends", "10"),
        ("risk_block_per_minute", "20"),
        ("block_text", "你的邀请记录异常，已被取消。"),
    ];
    for &(name, value) in changes {
        match form.iter_mut().find(|(n, _)| *n == name) {
            Some(field) => field.1 = value,
            None => form.push((name, value)),
        }
    }
    operator.post_form(&page, &form).await.status()
}

/// `n` fresh accounts follow through `inviter`'s code within 40 s from `t0`; the first
/// `leaving` of them leave within the day.
pub async fn farm(app: &TestApp, inviter: &str, tag: &str, n: usize, leaving: usize, t0: i64) {
    let scene = app.issue_code(inviter).await["scene_id"].as_i64().unwrap();
    for i in 0..n {
        let at = t0 + (i as i64 * 40) / n as i64;
        let r = app.subscribe(&openid(tag, i), Some(scene), at).await;
        assert_eq!(r.status(), 200);
    }
    for i in 0..leaving {
        let r = app
            .unsubscribe(&openid(tag, i), t0 + 3600 + i as i64 * 60)
            .await;
        assert_eq!(r.status(), 200);
    }
}

/// `n` friends at a steady pace (one every 4 minutes of CreateTime), every other one writing
/// to the account ten minutes after following, one of them leaving.
async fn honest(app: &TestApp, inviter: &str, tag: &str, n: usize, t0: i64) {
    let scene = app.issue_code(inviter).await["scene_id"].as_i64().unwrap();
    for i in 0..n {
        let at = t0 + i as i64 * 240;
        let r = app.subscribe(&openid(tag, i), Some(scene), at).await;
        assert_eq!(r.status(), 200);
        if i % 2 == 1 {
            assert_eq!(text(app, &openid(tag, i), "你好", at + 600).await, 200);
        }
    }
    app.unsubscribe(&openid(tag, 0), t0 + 2 * 3600).await;
}

/// A text message from `openid` at `create_time`; the answer's status.
pub async fn text(app: &TestApp, openid: &str, content: &str, create_time: i64) -> u16 {
    let push = fission::wechat::message::Push {
        to_user: "gh_test".into(),
        from_user: openid.into(),
        create_time,
        msg_type: "text".into(),
        event: None,
        event_key: None,
        ticket: None,
        content: Some(content.into()),
        msg_id: Some(rand::random::<u32>().into()),
        subscriptions: Vec::new(),
    };
    app.push(&push).await.status().as_u16()
}

async fn user(app: &TestApp, openid: &str) -> Value {
    let response = app.api_get(&format!("/api/v1/users/{openid}")).await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

fn signal<'a>(view: &'a Value, name: &str) -> Option<&'a Value> {
    view["risk"]["signals"]
        .as_array()?
        .iter()
        .find(|s| s["name"] == name)
}

async fn grants(app: &TestApp, openid: &str) -> Vec<(i64, String, Option<String>)> {
    sqlx::query_as(
        "SELECT tier_id, status, code FROM reward_grants WHERE openid = $1 ORDER BY tier_id",
    )
    .bind(openid)
    .fetch_all(&app.pool)
    .await
    .unwrap()
}

async fn assert_untouched(app: &TestApp, honest: &[String]) {
    for inviter in honest {
        let view = user(app, inviter).await;
        assert_eq!(view["risk"]["status"], "ok", "{view}");
        assert_eq!(view["risk"]["signals"], serde_json::json!([]), "{view}");
    }
}

#[tokio::test]
async fn a_farm_is_held_under_hold_and_approving_grants_exactly_what_it_reached() {
    let wechat = FakeWechat::start(100_000, None).await;
    let app = TestApp::spawn(&with_admin(Deployment::new(&wechat))).await;
    let campaign = default_campaign(&app).await;
    set_policy(&app, campaign, "hold").await;
    let twelve = fission::db::campaigns::add_tier(&app.pool, campaign, 12, "优惠券", true)
        .await
        .unwrap();
    let many = fission::db::campaigns::add_tier(&app.pool, campaign, 25, "大奖", false)
        .await
        .unwrap();
    let codes: Vec<String> = (0..5).map(|i| format!("CPN-{i}")).collect();
    fission::db::campaigns::add_reward_codes(&app.pool, twelve.id, &codes)
        .await
        .unwrap();

    let t0 = Utc::now().timestamp() - 3 * DAY;
    let farmer = openid("holdfarmer", 0);
    let honest_inviters: Vec<String> = (0..2).map(|i| openid("holdhonest", i)).collect();
    honest(&app, &honest_inviters[0], "holdhf0x", 13, t0).await;
    farm(&app, &farmer, "holdfarm", 30, 18, t0 + 600).await;
    honest(&app, &honest_inviters[1], "holdhf1x", 13, t0 + 900).await;

    let view = user(&app, &farmer).await;
    assert_eq!(view["risk"]["status"], "held", "{view}");
    let velocity = signal(&view, "credits_per_minute").expect("velocity fired");
    assert_eq!(velocity["value"], 30.0, "{view}");
    assert_eq!(velocity["threshold"], 10.0);
    assert!(velocity["at"].is_string());
    let left = signal(&view, "friends_left_percent").expect("leaving share fired");
    assert_eq!(
        (left["value"].as_f64(), left["threshold"].as_f64()),
        (Some(60.0), Some(50.0))
    );
    assert_eq!(view["invites"], 12, "18 of 30 left within the window");
    assert!(
        grants(&app, &farmer).await.is_empty(),
        "held: nothing granted"
    );

    assert_untouched(&app, &honest_inviters).await;
    for inviter in &honest_inviters {
        let g = grants(&app, inviter).await;
        assert_eq!(g.len(), 1, "honest inviters are rewarded as usual: {g:?}");
        assert_eq!(g[0].1, "granted");
    }

    // The operator approves: the farmer gets exactly the tier their 12 live credits reach.
    let mut operator = Operator::new(&app);
    operator.login().await;
    let page = format!("/admin/risk/{campaign}/{farmer}");
    let html = operator.get(&page).await.text().await.unwrap();
    assert!(
        html.contains("credits_per_minute") && html.contains("18 (60%)"),
        "{html}"
    );
    assert!(html.contains("id=\"risk-silent\">30 / 30<"), "{html}");
    let csrf = operator.csrf("/admin/risk").await;
    let pick = format!("{campaign}:{farmer}");
    let response = operator
        .post_form(
            "/admin/risk",
            &[("csrf", &csrf), ("action", "approve"), ("pick", &pick)],
        )
        .await;
    assert_eq!(response.status(), 303);
    let g = grants(&app, &farmer).await;
    assert_eq!(g.len(), 1, "{g:?}");
    assert_eq!((g[0].0, g[0].1.as_str()), (twelve.id, "granted"));
    assert!(g[0].2.as_deref().is_some_and(|c| c.starts_with("CPN-")));
    assert!(g.iter().all(|(tier, _, _)| *tier != many.id));
    assert_eq!(user(&app, &farmer).await["risk"]["status"], "ok");
    let notice: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM outbox WHERE kind = 'notice' AND payload->>'openid' = $1",
    )
    .bind(&farmer)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert!(notice >= 1, "the approved inviter is told");

    // The decision is on the inviter's page with the operator's name; a second approval of
    // someone already cleared does nothing.
    let html = operator.get(&page).await.text().await.unwrap();
    assert!(html.contains("id=\"risk-decisions\""), "{html}");
    assert!(html.contains("<td>admin</td>"), "{html}");
    let html = operator
        .get(&format!("/admin/users/{farmer}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("id=\"user-risk-decisions\"") && html.contains("<td>admin</td>"),
        "the follower's page lists the decisions: {html}"
    );
    let again = operator
        .post_form(
            "/admin/risk",
            &[("csrf", &csrf), ("action", "approve"), ("pick", &pick)],
        )
        .await;
    assert_eq!(again.headers()["location"], "/admin/risk?done=0&skipped=1");
    assert_eq!(grants(&app, &farmer).await.len(), 1);
}

async fn board(app: &TestApp, campaign: i64) -> Vec<(String, i64)> {
    let rows: Value = app
        .api_get(&format!("/api/v1/leaderboard?campaign={campaign}&limit=50"))
        .await
        .json()
        .await
        .unwrap();
    rows.as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["openid"].as_str().unwrap().to_string(),
                r["invites"].as_i64().unwrap(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_farm_is_blocked_under_block_and_the_board_reranks() {
    let wechat = FakeWechat::start(100_000, None).await;
    let deployment = with_admin(Deployment::new(&wechat));
    let app = TestApp::spawn(&deployment).await;
    let campaign = default_campaign(&app).await;
    // The operator sets the policy on the campaign's risk page; a threshold out of range is
    // refused with the form shown again.
    let mut operator = Operator::new(&app);
    operator.login().await;
    let block = |per_minute| [("risk_policy", "block"), ("risk_per_minute", per_minute)];
    assert_eq!(save_policy(&mut operator, campaign, &block("0")).await, 400);
    assert_eq!(
        save_policy(&mut operator, campaign, &block("10")).await,
        303
    );
    let page = format!("/admin/campaigns/{campaign}/risk");
    let html = operator.get(&page).await.text().await.unwrap();
    assert!(html.contains("<option value=\"block\" selected>"), "{html}");
    let html = operator
        .get(&format!("/admin/campaigns/{campaign}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("id=\"risk-summary\"") && html.contains(&format!("href=\"{page}\"")),
        "the campaign's page shows its policy and links to it: {html}"
    );
    let three = fission::db::campaigns::add_tier(&app.pool, campaign, 3, "贴纸", true)
        .await
        .unwrap();
    let codes: Vec<String> = (0..3).map(|i| format!("STK-{i}")).collect();
    fission::db::campaigns::add_reward_codes(&app.pool, three.id, &codes)
        .await
        .unwrap();

    let t0 = Utc::now().timestamp() - 3 * DAY;
    let farmer = openid("blockfarmer", 0);
    let honest_inviters: Vec<String> = (0..2).map(|i| openid("blockhonest", i)).collect();
    honest(&app, &honest_inviters[0], "blkhf0x", 12, t0).await;
    // The farmer's first credits come before any signal: their reward (a code) is granted.
    farm(&app, &farmer, "blockfarm", 30, 18, t0 + 600).await;
    honest(&app, &honest_inviters[1], "blkhf1x", 6, t0 + 900).await;

    let view = user(&app, &farmer).await;
    assert_eq!(view["risk"]["status"], "blocked", "{view}");
    assert!(signal(&view, "credits_per_minute").is_some_and(|s| s["value"].as_f64() > Some(20.0)));
    assert_eq!(view["invites"], 0, "every credit cancelled");
    let cancelled: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM referral_revocations v JOIN referrals r ON r.id = v.referral_id
         WHERE r.inviter_openid = $1 AND v.reason = 'blocked' AND v.decision_id IS NOT NULL",
    )
    .bind(&farmer)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        cancelled, 30,
        "cancelled as ledger entries, later credits too"
    );
    let credits: i64 =
        sqlx::query_scalar("SELECT count(*) FROM referrals WHERE inviter_openid = $1")
            .bind(&farmer)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(credits, 30, "the credits themselves are kept");

    // Re-ranked: the farmer is gone, the honest inviters lead.
    let rows = board(&app, campaign).await;
    assert_eq!(
        rows,
        vec![
            (honest_inviters[0].clone(), 11),
            (honest_inviters[1].clone(), 5)
        ]
    );
    // Rewards taken back, the farmer's code back in the pool (3 codes, two honest grants).
    let g = grants(&app, &farmer).await;
    assert_eq!(g.len(), 1);
    assert_eq!(g[0].1, "revoked");
    assert_eq!(
        fission::db::campaigns::stock(&app.pool, three.id)
            .await
            .unwrap(),
        1
    );
    let told: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM outbox WHERE kind = 'message' AND payload->>'openid' = $1
           AND payload->>'text' = '你的邀请记录异常，已被取消。'",
    )
    .bind(&farmer)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(told, 1, "the block text is queued once");
    assert_untouched(&app, &honest_inviters).await;

    // The ledger agrees: a rebuild from it changes nothing.
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_fission"))
        .envs(deployment.env.iter())
        .args(["rebuild-stats", "--campaign", &campaign.to_string()])
        .output()
        .expect("run fission rebuild-stats");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(!stdout.contains(&farmer), "{stdout}");
    assert_eq!(board(&app, campaign).await, rows);

    // Unblocking lets the inviter earn again; the cancelled credits stay cancelled.
    let csrf = operator.csrf("/admin/risk").await;
    let pick = format!("{campaign}:{farmer}");
    let response = operator
        .post_form(
            "/admin/risk",
            &[
                ("csrf", &csrf),
                ("action", "unblock"),
                ("pick", &pick),
                ("back", "inviter"),
            ],
        )
        .await;
    assert_eq!(response.status(), 303);
    assert_eq!(user(&app, &farmer).await["risk"]["status"], "ok");
    let scene = app.issue_code(&farmer).await["scene_id"].as_i64().unwrap();
    app.subscribe(&openid("blockafter", 0), Some(scene), t0 + DAY)
        .await;
    assert_eq!(user(&app, &farmer).await["invites"], 1);
}

/// Farms and honest inviters pushed all at once through two instances: batches carry several
/// credits of one inviter and take risk rows alongside leaderboard rows on both instances.
/// Every push is answered, each farm ends held with its full burst as evidence, and no honest
/// inviter is touched.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn farms_pushed_concurrently_through_two_instances_are_held_and_honest_ones_are_not() {
    use futures_util::stream::{self, StreamExt};

    let wechat = FakeWechat::start(100_000, None).await;
    let deployment = Deployment::new(&wechat).set("DATABASE_MAX_CONNECTIONS", "16");
    let a = TestApp::spawn(&deployment).await;
    let b = TestApp::spawn(&deployment).await;
    let campaign = default_campaign(&a).await;
    set_policy(&a, campaign, "hold").await;
    let t0 = Utc::now().timestamp() - 2 * DAY;
    let farmers: Vec<String> = (0..3).map(|i| openid("cfarmer", i)).collect();
    let honest: Vec<String> = (0..3).map(|i| openid("chonest", i)).collect();
    let mut pushes = Vec::new();
    for (i, inviter) in farmers.iter().chain(&honest).enumerate() {
        let scene = a.issue_code(inviter).await["scene_id"].as_i64().unwrap();
        let farming = i < farmers.len();
        for f in 0..30 {
            let at = if farming {
                t0 + (f * 40) / 30
            } else {
                t0 + f * 300
            };
            pushes.push((openid(&format!("c{i}f"), f as usize), scene, at));
        }
    }
    let statuses: Vec<u16> = stream::iter(pushes.into_iter().enumerate())
        .map(|(n, (friend, scene, at))| {
            let app = if n % 2 == 0 { &a } else { &b };
            async move {
                app.subscribe(&friend, Some(scene), at)
                    .await
                    .status()
                    .as_u16()
            }
        })
        .buffer_unordered(48)
        .collect()
        .await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");

    for farmer in &farmers {
        let view = user(&a, farmer).await;
        assert_eq!(view["risk"]["status"], "held", "{view}");
        assert_eq!(view["invites"], 30);
        assert_eq!(
            signal(&view, "credits_per_minute").map(|s| s["value"].clone()),
            Some(serde_json::json!(30.0)),
            "{view}"
        );
    }
    assert_untouched(&a, &honest).await;
}

/// An inviter's kept credit times are the newest 128 whatever order their friends' pushes
/// arrive in, and their velocity signal is rewritten only when it grows.
#[tokio::test]
async fn the_kept_credit_times_are_the_newest_whatever_the_order_and_the_peak_only_grows() {
    let wechat = FakeWechat::start(100_000, None).await;
    let app = TestApp::spawn(&Deployment::new(&wechat)).await;
    let campaign = default_campaign(&app).await;
    set_policy(&app, campaign, "flag").await;
    let inviter = openid("pacekeeper", 0);
    let scene = app.issue_code(&inviter).await["scene_id"].as_i64().unwrap();
    let t0 = Utc::now().timestamp() - 2 * DAY;
    // Friend n follows at `at`; pushed in the order given.
    let follow = |friends: &[(usize, i64)]| {
        let (app, scene) = (&app, scene);
        let friends = friends.to_vec();
        async move {
            for (n, at) in friends {
                let r = app
                    .subscribe(&openid("pacefriend", n), Some(scene), at)
                    .await;
                assert_eq!(r.status(), 200);
            }
        }
    };
    // 12 friends within a minute: the velocity signal fires at 12.
    let first: Vec<(usize, i64)> = (0..12).map(|i| (i, t0 + 3600 + i as i64 * 4)).collect();
    follow(&first).await;
    let view = user(&app, &inviter).await;
    let fired = signal(&view, "credits_per_minute")
        .expect("velocity fired")
        .clone();
    assert_eq!(fired["value"], 12.0, "{view}");

    // 140 more, one every 10 minutes of CreateTime (no new peak), pushed out of order: the
    // later half first, then the earlier half — older than everything kept by then.
    let later: Vec<(usize, i64)> = (0..140)
        .map(|i| (100 + i, t0 + 7200 + i as i64 * 600))
        .collect();
    follow(&later[70..]).await;
    follow(&later[..70]).await;
    let kept: Vec<i64> = sqlx::query_scalar(
        "SELECT recent FROM risk_inviters WHERE campaign_id = $1 AND openid = $2",
    )
    .bind(campaign)
    .bind(&inviter)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    let mut newest: Vec<i64> = first
        .iter()
        .chain(&later)
        .map(|(_, at)| at * 1_000_000)
        .collect();
    newest.sort_unstable_by(|a, b| b.cmp(a));
    newest.truncate(128);
    assert_eq!(kept, newest, "the newest 128 credit times, newest first");
    let view = user(&app, &inviter).await;
    assert_eq!(
        signal(&view, "credits_per_minute"),
        Some(&fired),
        "no stronger peak: the signal as first recorded"
    );

    // 15 within a minute (between two of the friends above, 10 minutes apart), pushed newest
    // first: a stronger peak is recorded.
    let burst: Vec<(usize, i64)> = (0..15)
        .rev()
        .map(|i| (300 + i, t0 + 7200 + 132 * 600 + 100 + i as i64 * 3))
        .collect();
    follow(&burst).await;
    let view = user(&app, &inviter).await;
    let stronger = signal(&view, "credits_per_minute").expect("velocity kept");
    assert_eq!(stronger["value"], 15.0, "{view}");
    assert_ne!(stronger["at"], fired["at"], "{view}");
}
