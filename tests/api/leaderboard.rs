//! The materialised leaderboard (`inviter_stats`) stays exactly what the ledger says, whatever
//! the interleaving of credits and revocations across instances.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use futures_util::stream::{self, StreamExt};
use rand::{rngs::StdRng, Rng, SeedableRng};

use crate::helpers::{openid, Deployment, FakeWechat, TestApp};

const DAY: i64 = 86_400;

type Stats = BTreeMap<String, (i32, DateTime<Utc>)>;

/// The live leaderboard rows of a campaign: openid -> (invites, reached_at).
async fn live_stats(app: &TestApp, campaign: i64) -> Stats {
    let rows: Vec<(String, i32, DateTime<Utc>)> = sqlx::query_as(
        "SELECT openid, invites, reached_at FROM inviter_stats WHERE campaign_id = $1 AND invites > 0",
    )
    .bind(campaign)
    .fetch_all(&app.pool)
    .await
    .unwrap();
    rows.into_iter().map(|(o, n, at)| (o, (n, at))).collect()
}

/// What the ledger says the leaderboard is, computed here from the ledger tables.
async fn ledger_stats(app: &TestApp, campaign: i64) -> Stats {
    let rows: Vec<(String, i64, DateTime<Utc>)> = sqlx::query_as(
        "SELECT r.inviter_openid, count(*), max(r.credited_at) FROM referrals r
         WHERE r.campaign_id = $1
           AND NOT EXISTS (SELECT 1 FROM referral_revocations v WHERE v.referral_id = r.id)
         GROUP BY r.inviter_openid",
    )
    .bind(campaign)
    .fetch_all(&app.pool)
    .await
    .unwrap();
    rows.into_iter()
        .map(|(o, n, at)| (o, (n as i32, at)))
        .collect()
}

async fn board(app: &TestApp) -> Vec<(i64, String, i64)> {
    let rows: Vec<serde_json::Value> = app
        .api_get("/api/v1/leaderboard?limit=100")
        .await
        .json()
        .await
        .unwrap();
    rows.iter()
        .map(|r| {
            (
                r["rank"].as_i64().unwrap(),
                r["openid"].as_str().unwrap().to_string(),
                r["invites"].as_i64().unwrap(),
            )
        })
        .collect()
}

/// Two instances, four inviters, and friends following while earlier friends leave inside the
/// revoke window — all at once. Every credit and revocation touches one of four leaderboard
/// rows, so a count computed from a ledger read that does not hold the row loses updates.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_credits_and_revocations_on_two_instances_keep_the_leaderboard_exact() {
    let wechat = FakeWechat::start(100_000, None).await;
    let deployment = Deployment::new(&wechat).set("DATABASE_MAX_CONNECTIONS", "24");
    let a = TestApp::spawn(&deployment).await;
    let b = TestApp::spawn(&deployment).await;
    sqlx::query("UPDATE campaigns SET starts_at = '2020-01-01' WHERE is_default")
        .execute(&a.pool)
        .await
        .unwrap();
    let campaign: i64 = sqlx::query_scalar("SELECT id FROM campaigns WHERE is_default")
        .fetch_one(&a.pool)
        .await
        .unwrap();
    let inviters: Vec<String> = (0..4).map(|i| openid("racer", i)).collect();
    let mut scenes = Vec::new();
    for inviter in &inviters {
        scenes.push(a.issue_code(inviter).await["scene_id"].as_i64().unwrap());
    }

    let t0 = Utc::now().timestamp() - 30 * DAY;
    let mut rng = StdRng::seed_from_u64(9);
    // (friend, scene, follow time, leaves at)
    let friends: Vec<(String, i64, i64, Option<i64>)> = (0..800)
        .map(|i| {
            let at = t0 + i as i64;
            // Only friends of round one leave (during round two).
            let leaves = (i < 400 && rng.gen_bool(0.45)).then(|| at + DAY);
            (openid("racefriend", i), scenes[i % 4], at, leaves)
        })
        .collect();

    // Round one credits the first half; round two credits the rest while the first half
    // leaves, so revocations race credits for the same four rows.
    let (first, second) = friends.split_at(400);
    let follows = |batch: &[(String, i64, i64, Option<i64>)]| {
        batch
            .iter()
            .map(|(f, scene, at, _)| (f.clone(), Some(*scene), *at))
            .collect::<Vec<_>>()
    };
    let mut round_two = follows(second);
    round_two.extend(
        first
            .iter()
            .filter_map(|(f, _, _, leaves)| leaves.map(|l| (f.clone(), None, l))),
    );
    // Leaves and follows interleaved, so every moment has both in flight.
    for i in (1..round_two.len()).rev() {
        round_two.swap(i, rng.gen_range(0..=i));
    }
    for (round, pushes) in [follows(first), round_two].into_iter().enumerate() {
        let apps = [&a, &b];
        let statuses: Vec<u16> = stream::iter(pushes.into_iter().enumerate())
            .map(|(n, (friend, scene, at))| {
                let app = apps[(n + round) % 2];
                async move {
                    match scene {
                        Some(s) => app.subscribe(&friend, Some(s), at).await,
                        None => app.unsubscribe(&friend, at).await,
                    }
                    .status()
                    .as_u16()
                }
            })
            .buffer_unordered(64)
            .collect()
            .await;
        assert!(
            statuses.iter().all(|s| *s == 200),
            "round {round}: {statuses:?}"
        );
    }
    let mut expected: BTreeMap<String, i32> = BTreeMap::new();
    for (i, (_, _, _, leaves)) in friends.iter().enumerate() {
        if leaves.is_none() {
            *expected.entry(inviters[i % 4].clone()).or_default() += 1;
        }
    }
    let from_ledger = ledger_stats(&a, campaign).await;
    let ledger_counts: BTreeMap<String, i32> = from_ledger
        .iter()
        .map(|(o, (n, _))| (o.clone(), *n))
        .collect();
    assert_eq!(ledger_counts, expected, "the ledger itself is exact");
    assert_eq!(
        live_stats(&a, campaign).await,
        from_ledger,
        "live counts and reached_at equal the ledger's"
    );

    // Ranks: the API's order is the ledger's order (most invites, then who reached it first).
    let mut by_ledger: Vec<(&String, &(i32, DateTime<Utc>))> = from_ledger.iter().collect();
    by_ledger.sort_by(|x, y| {
        y.1 .0
            .cmp(&x.1 .0)
            .then(x.1 .1.cmp(&y.1 .1))
            .then(x.0.cmp(y.0))
    });
    let expected_board: Vec<(i64, String, i64)> = by_ledger
        .iter()
        .enumerate()
        .map(|(i, (o, (n, _)))| (i as i64 + 1, (*o).clone(), i64::from(*n)))
        .collect();
    assert_eq!(board(&b).await, expected_board);
}

/// `fission rebuild-stats` repairs rows that drifted from the ledger and says which.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebuild_stats_repairs_drifted_rows_and_reports_them() {
    let wechat = FakeWechat::start(100_000, None).await;
    let deployment = Deployment::new(&wechat);
    let app = TestApp::spawn(&deployment).await;
    let campaign: i64 = sqlx::query_scalar("SELECT id FROM campaigns WHERE is_default")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let now = Utc::now().timestamp();
    let inviters: Vec<String> = (0..3).map(|i| openid("drift", i)).collect();
    for (n, inviter) in inviters.iter().enumerate() {
        let scene = app.issue_code(inviter).await["scene_id"].as_i64().unwrap();
        for f in 0..=n {
            let friend = openid(&format!("driftf{n}x"), f);
            assert_eq!(app.subscribe(&friend, Some(scene), now).await.status(), 200);
        }
    }
    let healthy = live_stats(&app, campaign).await;
    assert_eq!(healthy, ledger_stats(&app, campaign).await);

    // Drift: one count too high, one row lost.
    sqlx::query("UPDATE inviter_stats SET invites = invites + 5 WHERE openid = $1")
        .bind(&inviters[0])
        .execute(&app.pool)
        .await
        .unwrap();
    sqlx::query("DELETE FROM inviter_stats WHERE openid = $1")
        .bind(&inviters[2])
        .execute(&app.pool)
        .await
        .unwrap();

    let output = std::process::Command::new(env!("CARGO_BIN_EXE_fission"))
        .envs(deployment.env.iter())
        .args(["rebuild-stats", "--campaign", &campaign.to_string()])
        .output()
        .expect("run fission rebuild-stats");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains(&format!("{}: 6 ", inviters[0])), "{stdout}");
    assert!(
        stdout.contains(&format!("{}: 0 -> 3 ", inviters[2])),
        "{stdout}"
    );
    assert!(
        stdout.contains("2 leaderboard row(s) corrected"),
        "{stdout}"
    );
    assert_eq!(live_stats(&app, campaign).await, healthy);

    // Run again: nothing left to correct.
    let again = std::process::Command::new(env!("CARGO_BIN_EXE_fission"))
        .envs(deployment.env.iter())
        .arg("rebuild-stats")
        .output()
        .expect("run fission rebuild-stats");
    assert!(String::from_utf8_lossy(&again.stdout).contains("0 leaderboard row(s) corrected"));
}
