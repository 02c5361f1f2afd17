//! Exactly-once crediting under retries, concurrency and two instances, checked against a
//! ground truth the test computes itself: leaderboard, CSV ledger and messages sent.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use chrono::Utc;
use futures_util::stream::{self, StreamExt};
use rand::{rngs::StdRng, Rng, SeedableRng};

use crate::helpers::{openid, Deployment, FakeWechat, TestApp, ADMIN_TOKEN};

const DAY: i64 = 86_400;

/// Lets campaigns cover pushes dated in the past (the default campaign starts at first start).
async fn campaign_from_the_past(app: &TestApp) {
    sqlx::query("UPDATE campaigns SET starts_at = '2020-01-01' WHERE is_default")
        .execute(&app.pool)
        .await
        .unwrap();
}

async fn wait_for_outbox(app: &TestApp) {
    for _ in 0..600 {
        let pending: i64 =
            sqlx::query_scalar("SELECT count(*) FROM outbox WHERE status = 'pending'")
                .fetch_one(&app.pool)
                .await
                .unwrap();
        if pending == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("outbox did not drain in 60 s");
}

#[derive(Default)]
struct Truth {
    /// invitee -> (inviter, revoked)
    ledger: BTreeMap<String, (String, bool)>,
}

impl Truth {
    fn live_counts(&self) -> BTreeMap<String, i64> {
        let mut counts = BTreeMap::new();
        for (inviter, revoked) in self.ledger.values() {
            if !revoked {
                *counts.entry(inviter.clone()).or_default() += 1;
            }
        }
        counts
    }
    fn credits(&self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for (inviter, _) in self.ledger.values() {
            *counts.entry(inviter.clone()).or_default() += 1;
        }
        counts
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_credit_exactly_once_against_ground_truth() {
    let wechat = FakeWechat::start(100_000, None).await;
    let deployment = Deployment::new(&wechat);
    let a = TestApp::spawn(&deployment).await;
    let b = TestApp::spawn(&deployment).await;
    campaign_from_the_past(&a).await;
    let apps = [&a, &b];
    let mut rng = StdRng::seed_from_u64(20261121);
    let t0 = Utc::now().timestamp() - 60 * DAY;

    // 40 inviters, following in the simulator so they can receive messages.
    let inviters: Vec<String> = (0..40).map(|i| openid("inviter", i)).collect();
    let mut scene_of = HashMap::new();
    for inviter in &inviters {
        wechat.sim.add_user(inviter, "inviter", true);
        let code = a.issue_code(inviter).await;
        scene_of.insert(inviter.clone(), code["scene_id"].as_i64().unwrap());
        // The inviter followed long ago (plain follow): they are not anyone's new invitee.
        a.subscribe(inviter, None, t0 - 10 * DAY).await;
    }

    // Existing followers imported from WeChat's follower list: never creditable.
    let imported: Vec<String> = (0..30).map(|i| openid("imported", i)).collect();
    for f in &imported {
        wechat.sim.add_user(f, "old", true);
    }
    let report = fission::referral::import::import_followers(&a.app_state, false, |_| {})
        .await
        .unwrap();
    assert!(report.followers >= 30);

    // Followers Fission saw follow before (plain follow), who later SCAN an inviter's code.
    let old_followers: Vec<String> = (0..30).map(|i| openid("oldfollow", i)).collect();
    for f in &old_followers {
        a.subscribe(f, None, t0 - DAY).await;
    }

    let mut truth = Truth::default();
    let mut pushes: Vec<(String, i64, &'static str, i64)> = Vec::new(); // (openid, scene, kind, create_time)

    // 2,000 new invitees, each pushed 1-4 times.
    for i in 0..2000 {
        let invitee = openid("invitee", i);
        let inviter = &inviters[rng.gen_range(0..inviters.len())];
        let at = t0 + i as i64 * 10;
        for _ in 0..rng.gen_range(1..=4) {
            pushes.push((invitee.clone(), scene_of[inviter], "subscribe", at));
        }
        truth.ledger.insert(invitee, (inviter.clone(), false));
    }
    // Self-scans: an inviter re-following through their own code.
    for inviter in inviters.iter().take(10) {
        pushes.push((inviter.clone(), scene_of[inviter], "subscribe", t0 + 30_000));
    }
    // SCANs by existing followers and subscribes by imported followers: no credit.
    for (i, f) in old_followers.iter().enumerate() {
        pushes.push((
            f.clone(),
            scene_of[&inviters[i % inviters.len()]],
            "SCAN",
            t0 + 40_000,
        ));
    }
    for (i, f) in imported.iter().enumerate() {
        pushes.push((
            f.clone(),
            scene_of[&inviters[i % inviters.len()]],
            "subscribe",
            t0 + 40_000,
        ));
    }

    // All of it at once, spread over both instances, duplicates racing each other.
    let order: Vec<usize> = {
        let mut v: Vec<usize> = (0..pushes.len()).collect();
        for i in (1..v.len()).rev() {
            v.swap(i, rng.gen_range(0..=i));
        }
        v
    };
    let statuses: Vec<u16> = stream::iter(order.into_iter().enumerate())
        .map(|(n, idx)| {
            let (user, scene, kind, at) = pushes[idx].clone();
            let app = apps[n % 2];
            async move {
                let r = match kind {
                    "SCAN" => app.scan(&user, scene, at).await,
                    _ => app.subscribe(&user, Some(scene), at).await,
                };
                r.status().as_u16()
            }
        })
        .buffer_unordered(48)
        .collect()
        .await;
    assert!(
        statuses.iter().all(|s| *s == 200),
        "every push answered 200"
    );

    // Unsubscribes: inside the 7-day window (revoked), outside it (kept); then re-subscribes.
    let invitees: Vec<String> = truth.ledger.keys().cloned().collect();
    for (i, invitee) in invitees.iter().enumerate().take(300) {
        let credited_at = t0 + i as i64 * 10;
        let (left_at, revoked) = if i % 2 == 0 {
            (credited_at + 2 * DAY, true)
        } else {
            (credited_at + 8 * DAY, false)
        };
        assert_eq!(
            apps[i % 2].unsubscribe(invitee, left_at).await.status(),
            200
        );
        // Retried unsubscribe: no double revocation.
        assert_eq!(
            apps[(i + 1) % 2]
                .unsubscribe(invitee, left_at)
                .await
                .status(),
            200
        );
        truth.ledger.get_mut(invitee).unwrap().1 = revoked;
        // Coming back through another inviter's code credits no one.
        let other = &inviters[(i + 7) % inviters.len()];
        assert_eq!(
            apps[i % 2]
                .subscribe(invitee, Some(scene_of[other]), left_at + DAY)
                .await
                .status(),
            200
        );
    }

    // Leaderboard = live credits, ordered.
    let board: Vec<serde_json::Value> = a
        .api_get("/api/v1/leaderboard?limit=1000")
        .await
        .json()
        .await
        .unwrap();
    let got: BTreeMap<String, i64> = board
        .iter()
        .map(|r| {
            (
                r["openid"].as_str().unwrap().to_string(),
                r["invites"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(got, truth.live_counts());
    let counts: Vec<i64> = board
        .iter()
        .map(|r| r["invites"].as_i64().unwrap())
        .collect();
    assert!(counts.windows(2).all(|w| w[0] >= w[1]), "sorted by invites");
    assert!(board
        .iter()
        .enumerate()
        .all(|(i, r)| r["rank"] == i as i64 + 1));

    // The CSV ledger, row for row.
    let csv = b
        .http
        .get(format!("{}/admin/export/referrals.csv", b.address))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let mut lines = csv.lines();
    assert!(lines.next().unwrap().starts_with(
        "\u{feff}invitee_openid,inviter_openid,campaign_id,scene,status,credited_at,revoked_at,"
    ));
    let exported: BTreeMap<String, (String, bool)> = lines
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f[0].to_string(), (f[1].to_string(), f[4] == "revoked"))
        })
        .collect();
    assert_eq!(
        exported.len(),
        csv.lines().count() - 1,
        "one row per invitee"
    );
    assert_eq!(exported, truth.ledger);

    // Every inviter with credits has one notice for them; none has a channel open here (they
    // last acted months ago, and the campaign has no other channel), so each waits for the
    // inviter's next action. Nobody without credits has one; nothing failed.
    wait_for_outbox(&a).await;
    let failed: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox WHERE status = 'failed'")
        .fetch_one(&a.pool)
        .await
        .unwrap();
    assert_eq!(failed, 0);
    let waiting: BTreeSet<String> = sqlx::query_scalar(
        "SELECT payload->>'openid' FROM outbox WHERE kind = 'notice' AND status = 'waiting'",
    )
    .fetch_all(&a.pool)
    .await
    .unwrap()
    .into_iter()
    .collect();
    let credited: BTreeSet<String> = truth.credits().into_keys().collect();
    assert_eq!(waiting, credited);
    for inviter in &inviters {
        assert!(wechat.sim.inbox(inviter).is_empty());
    }
}

#[tokio::test]
async fn an_out_of_order_scan_does_not_cancel_the_credit_and_a_late_unsubscribe_still_revokes() {
    let wechat = FakeWechat::start(100_000, None).await;
    let app = TestApp::spawn(&Deployment::new(&wechat)).await;
    campaign_from_the_past(&app).await;
    let inviter = openid("ooo", 1);
    let scene = app.issue_code(&inviter).await["scene_id"].as_i64().unwrap();
    let t = Utc::now().timestamp() - 3600;

    // The SCAN of t+60 arrives before the (retried) subscribe of t.
    let friend = openid("ooofriend", 1);
    app.scan(&friend, scene, t + 60).await;
    app.subscribe(&friend, Some(scene), t).await;
    // The unsubscribe of t+120 arrives before the subscribe of t+100 that preceded it.
    let other = openid("ooofriend", 2);
    app.unsubscribe(&other, t + 120).await;
    app.subscribe(&other, Some(scene), t + 100).await;

    let user: serde_json::Value = app
        .api_get(&format!("/api/v1/users/{inviter}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        user["invites"], 1,
        "friend 1 counts, friend 2 left within the window"
    );
    let friend_view: serde_json::Value = app
        .api_get(&format!("/api/v1/users/{friend}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(friend_view["invited_by"], inviter.as_str());
    assert_eq!(friend_view["subscribed"], true);
    let other_view: serde_json::Value = app
        .api_get(&format!("/api/v1/users/{other}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(other_view["subscribed"], false);
}

#[tokio::test]
async fn reward_tiers_grant_once_and_draw_codes_from_the_pool() {
    let wechat = FakeWechat::start(100_000, None).await;
    let app = TestApp::spawn(&Deployment::new(&wechat)).await;
    campaign_from_the_past(&app).await;
    let campaign: i64 = sqlx::query_scalar("SELECT id FROM campaigns WHERE is_default")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let tier1 = fission::db::campaigns::add_tier(&app.pool, campaign, 2, "贴纸", false)
        .await
        .unwrap();
    let tier2 = fission::db::campaigns::add_tier(&app.pool, campaign, 3, "优惠券", true)
        .await
        .unwrap();
    fission::db::campaigns::add_reward_codes(&app.pool, tier2.id, &["COUPON-1".to_string()])
        .await
        .unwrap();

    let t = Utc::now().timestamp() - 3600;
    let mut winners = Vec::new();
    for n in 0..2 {
        let inviter = openid("tier", n);
        wechat.sim.add_user(&inviter, "tier", true);
        let scene = app.issue_code(&inviter).await["scene_id"].as_i64().unwrap();
        for f in 0..4 {
            app.subscribe(&openid(&format!("tierf{n}x"), f), Some(scene), t + f as i64)
                .await;
        }
        winners.push(inviter);
    }
    let grants: Vec<(String, i64, String, Option<String>)> = sqlx::query_as(
        "SELECT openid, tier_id, status, code FROM reward_grants ORDER BY openid, tier_id",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(grants.len(), 4, "two tiers each, once");
    let coupons: Vec<_> = grants.iter().filter(|g| g.1 == tier2.id).collect();
    assert_eq!(
        coupons
            .iter()
            .filter(|g| g.2 == "granted" && g.3.as_deref() == Some("COUPON-1"))
            .count(),
        1
    );
    assert_eq!(
        coupons.iter().filter(|g| g.2 == "out_of_stock").count(),
        1,
        "the empty pool is recorded, not a crash"
    );
    assert!(grants
        .iter()
        .filter(|g| g.1 == tier1.id)
        .all(|g| g.2 == "granted"));
    assert_eq!(
        fission::db::campaigns::stock(&app.pool, tier2.id)
            .await
            .unwrap(),
        0
    );

    // The winners last acted an hour ago: nothing can reach them until they write, and then
    // one message tells them everything — both rewards first, then the four friends.
    wait_for_outbox(&app).await;
    wechat
        .sim
        .set_callback(&format!("{}/wechat/callback", app.address));
    let mut texts = Vec::new();
    for inviter in &winners {
        assert!(wechat.sim.inbox(inviter).is_empty());
        assert_eq!(
            wechat.sim.send_text(inviter, "你好").await.unwrap().status,
            200
        );
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let told = loop {
            let told: Vec<String> = wechat
                .sim
                .inbox(inviter)
                .into_iter()
                .filter_map(|m| match (m.via, m.body) {
                    (
                        fission::sandbox::Via::Custom,
                        fission::sandbox::InboxBody::Text { content },
                    ) => Some(content),
                    _ => None,
                })
                .collect();
            if !told.is_empty() {
                break told;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "nothing reached {inviter}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert_eq!(told.len(), 1, "{told:?}");
        let text = told[0].clone();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert!(
            lines[0].contains("贴纸") && lines[1].contains("优惠券"),
            "{text}"
        );
        assert!(
            lines[2].contains("4 位好友") && lines[2].contains("你已邀请 4 位"),
            "{text}"
        );
        texts.push(text);
    }
    assert_eq!(
        texts
            .iter()
            .filter(|t| t.contains("兑换码：COUPON-1"))
            .count(),
        1
    );
    assert_eq!(
        texts.iter().filter(|t| t.contains("奖励码已发完")).count(),
        1
    );
}

#[tokio::test]
async fn outside_the_allowance_a_category_template_is_sent_or_the_notice_waits() {
    let wechat = FakeWechat::start(100_000, None).await;
    let app = TestApp::spawn(&Deployment::new(&wechat).set("FISSION_NOTICE_DELAY_MS", "0")).await;
    let (with_template, without) = (openid("tplA", 1), openid("tplB", 1));
    for inviter in [&with_template, &without] {
        wechat.sim.add_user(inviter, "inviter", true);
    }
    // Both inviters last talked to the account two days ago.
    wechat.sim.advance_clock(49 * 3600);
    let scene_a = app.issue_code(&with_template).await["scene_id"]
        .as_i64()
        .unwrap();
    let scene_b = app.issue_code(&without).await["scene_id"].as_i64().unwrap();

    sqlx::query(
        "UPDATE campaigns SET template_id = 'tpl_invite_progress',
                template_fields = E'thing1={invitee}\\nnumber2={count}\\nthing3={next}'",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    app.subscribe(
        &openid("tplfriend", 1),
        Some(scene_a),
        Utc::now().timestamp(),
    )
    .await;
    wait_for_outbox(&app).await;
    let inbox = wechat.sim.inbox(&with_template);
    assert_eq!(inbox.len(), 1);
    assert!(
        matches!(inbox[0].via, fission::sandbox::Via::Template),
        "{inbox:?}"
    );

    sqlx::query("UPDATE campaigns SET template_id = NULL, template_fields = ''")
        .execute(&app.pool)
        .await
        .unwrap();
    app.subscribe(
        &openid("tplfriend", 2),
        Some(scene_b),
        Utc::now().timestamp(),
    )
    .await;
    wait_for_outbox(&app).await;
    assert!(wechat.sim.inbox(&without).is_empty());
    // Nothing was tried that WeChat would refuse; the notice waits for the inviter.
    assert_eq!(wechat.sim.calls("message/custom/send"), 0);
    let waiting: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM outbox WHERE kind = 'notice' AND status = 'waiting'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(waiting, 1);
}

#[tokio::test]
async fn the_leaderboard_rebuilt_from_the_ledger_matches_the_live_one() {
    let wechat = FakeWechat::start(100_000, None).await;
    let app = TestApp::spawn(&Deployment::new(&wechat)).await;
    let now = Utc::now().timestamp();
    for n in 0..3 {
        let scene = app.issue_code(&openid("rebuild", n)).await["scene_id"]
            .as_i64()
            .unwrap();
        for f in 0..(n + 2) {
            app.subscribe(&openid(&format!("rbf{n}x"), f), Some(scene), now + f as i64)
                .await;
        }
    }
    app.unsubscribe(&openid("rbf2x", 0), now + 100).await;
    let live: serde_json::Value = app
        .api_get("/api/v1/leaderboard")
        .await
        .json()
        .await
        .unwrap();
    let campaign: i64 = sqlx::query_scalar("SELECT id FROM campaigns WHERE is_default")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let changed = fission::db::referrals::rebuild_stats(
        &app.pool,
        Some(fission::domain::CampaignId(campaign)),
    )
    .await
    .unwrap();
    assert!(
        changed.is_empty(),
        "the live leaderboard was exact: {changed:?}"
    );
    let rebuilt: serde_json::Value = app
        .api_get("/api/v1/leaderboard")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(live, rebuilt);
    let counts: Vec<i64> = live
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["invites"].as_i64().unwrap())
        .collect();
    assert_eq!(
        counts,
        vec![3, 3, 2],
        "rebuild2 lost one to revocation and ties with rebuild1"
    );
    // Ties go to whoever reached the count first: rebuild1 reached 3 before rebuild2 did.
    assert_eq!(live[0]["openid"], openid("rebuild", 1));
}
