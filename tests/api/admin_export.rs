//! CSV exports: a million-row ledger streams in flat memory with the exact row count, and the
//! leaderboard export answers to a session as well as to the bearer token.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::admin_client::{with_admin, Operator};
use crate::helpers::{openid, Deployment, FakeWechat, TestApp, ADMIN_TOKEN};

/// Resident memory of a process in kB.
fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

async fn seed_ledger(app: &TestApp, rows: i64) {
    let event: i64 = sqlx::query_scalar(
        "INSERT INTO events (dedupe_key, openid, create_time, msg_type, event)
         VALUES ('seed', 'oSeed', now(), 'event', 'subscribe') RETURNING id",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO referrals (campaign_id, invitee_openid, inviter_openid, scene, event_id, credited_at)
         SELECT (SELECT id FROM campaigns WHERE is_default),
                'oInvitee' || lpad(g::text, 20, '0'), 'oInviter' || lpad((g % 100000)::text, 20, '0'),
                'qrscene_' || (g % 100000 + 1), $1, now() - make_interval(secs => g)
         FROM generate_series(1, $2) g",
    )
    .bind(event)
    .bind(rows)
    .execute(&app.pool)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO referral_revocations (referral_id, revoked_at)
         SELECT id, now() FROM referrals WHERE id % 10 = 0",
    )
    .execute(&app.pool)
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_million_row_ledger_streams_in_flat_memory() {
    const ROWS: i64 = 1_000_000;
    let wechat = FakeWechat::start(100_000, None).await;
    let deployment = Deployment::new(&wechat);
    let app = TestApp::spawn(&deployment).await;
    seed_ledger(&app, ROWS).await;

    // The export is served by a `fission serve` process of its own, so its memory is measured
    // alone, not mixed with the other tests running in this process.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut server = std::process::Command::new(env!("CARGO_BIN_EXE_fission"))
        .envs(deployment.env.iter())
        .env("FISSION_BIND", format!("127.0.0.1:{port}"))
        .env("FISSION_WORKERS", "false")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start fission");
    let address = format!("http://127.0.0.1:{port}");
    let mut ready = false;
    for _ in 0..300 {
        if let Ok(r) = app.http.get(format!("{address}/readyz")).send().await {
            if r.status() == 200 {
                ready = true;
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ready, "the export server did not start");
    let pid = server.id();

    let baseline = rss_kb(pid);
    let peak = Arc::new(AtomicU64::new(baseline));
    let sampling = Arc::new(AtomicU64::new(1));
    let sampler = {
        let (peak, sampling) = (peak.clone(), sampling.clone());
        tokio::spawn(async move {
            while sampling.load(Ordering::Relaxed) == 1 {
                peak.fetch_max(rss_kb(pid), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    let mut response = app
        .http
        .get(format!("{address}/admin/export/referrals.csv"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers().get("content-length").is_none(),
        "not streamed"
    );
    let (mut lines, mut bytes, mut revoked) = (0u64, 0u64, 0u64);
    let mut first_line = Vec::new();
    let mut line = Vec::new();
    while let Some(chunk) = response.chunk().await.unwrap() {
        bytes += chunk.len() as u64;
        for &b in chunk.iter() {
            if b == b'\n' {
                if lines == 0 {
                    first_line = line.clone();
                } else if line.windows(9).any(|w| w == b",revoked,") {
                    revoked += 1;
                }
                lines += 1;
                line.clear();
            } else {
                line.push(b);
            }
        }
    }
    sampling.store(0, Ordering::Relaxed);
    sampler.await.unwrap();
    let _ = server.kill();
    let _ = server.wait();
    let growth_mb = peak.load(Ordering::Relaxed).saturating_sub(baseline) / 1024;
    let first_line = String::from_utf8(first_line).unwrap();
    assert!(
        first_line.starts_with(
            "\u{feff}invitee_openid,inviter_openid,campaign_id,scene,status,credited_at,revoked_at,"
        ),
        "a byte-order mark, then the contract's columns first: {first_line}"
    );
    assert_eq!(lines, ROWS as u64 + 1, "header + one line per referral");
    assert_eq!(revoked, ROWS as u64 / 10);
    assert!(
        bytes > 100 * 1024 * 1024,
        "only {bytes} bytes: the test proves little"
    );
    assert!(
        growth_mb < 100,
        "memory grew by {growth_mb} MB while streaming {} MB",
        bytes / 1024 / 1024
    );
    eprintln!(
        "streamed {lines} lines ({} MB); RSS grew {growth_mb} MB",
        bytes / 1024 / 1024
    );
}

#[tokio::test]
async fn the_leaderboard_exports_with_a_session_or_the_token() {
    let wechat = FakeWechat::start(100_000, None).await;
    let app = TestApp::spawn(&with_admin(Deployment::new(&wechat))).await;
    let inviter = openid("csvboard", 1);
    let scene = app.issue_code(&inviter).await["scene_id"].as_i64().unwrap();
    let now = chrono::Utc::now().timestamp();
    for i in 0..3 {
        app.subscribe(&openid("csvfriend", i), Some(scene), now)
            .await;
    }
    sqlx::query("UPDATE users SET nickname = '=SUM(\"A1\")' WHERE openid = $1")
        .bind(&inviter)
        .execute(&app.pool)
        .await
        .unwrap();
    let mut operator = Operator::new(&app);
    operator.login().await;
    let by_session = operator
        .get("/admin/export/leaderboard.csv?campaign=all")
        .await;
    assert_eq!(by_session.status(), 200);
    assert_eq!(
        by_session.headers()["content-type"],
        "text/csv; charset=utf-8"
    );
    let text = by_session.text().await.unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "\u{feff}rank,openid,nickname,invites,reached_at");
    // A nickname that looks like a formula is defused and quoted.
    assert!(
        lines[1].starts_with(&format!("1,{inviter},\"'=SUM(\"\"A1\"\")\",3,")),
        "{}",
        lines[1]
    );
    let by_token = app.api_get("/admin/export/leaderboard.csv").await;
    assert_eq!(by_token.status(), 200);
    assert_eq!(by_token.text().await.unwrap(), text);
}
