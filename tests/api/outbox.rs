//! The outbox survives a crash: an instance killed while sending leaves nothing unsent.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chrono::Utc;

use fission::sandbox::Via;

use crate::helpers::{openid, Deployment, FakeWechat, TestApp};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_batch_loses_no_notification() {
    let wechat = FakeWechat::start(100_000, None).await;
    let deployment = Deployment::new(&wechat).set("FISSION_NOTICE_DELAY_MS", "0");
    // Credits are made by an instance without workers, so the notices wait in the outbox.
    let quiet = TestApp::spawn(&deployment.clone().set("FISSION_WORKERS", "false")).await;
    wechat
        .sim
        .set_callback(&format!("{}/wechat/callback", quiet.address));
    let now = Utc::now().timestamp();
    let inviters: Vec<String> = (0..120).map(|i| openid("crash", i)).collect();
    for (i, inviter) in inviters.iter().enumerate() {
        wechat.sim.add_user(inviter, "crash", true);
        // Each inviter wrote to the account, so a customer-service message can reach them.
        assert_eq!(
            wechat.sim.send_text(inviter, "你好").await.unwrap().status,
            200
        );
        let scene = quiet.issue_code(inviter).await["scene_id"]
            .as_i64()
            .unwrap();
        quiet
            .subscribe(&openid("crashf", i), Some(scene), now)
            .await;
    }
    let queued: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM outbox WHERE status = 'pending' AND kind = 'notice'",
    )
    .fetch_one(&quiet.pool)
    .await
    .unwrap();
    assert_eq!(queued, inviters.len() as i64);
    let told = |wechat: &FakeWechat| {
        inviters
            .iter()
            .map(|i| {
                wechat
                    .sim
                    .inbox(i)
                    .iter()
                    .filter(|m| m.via == Via::Custom)
                    .count()
            })
            .collect::<Vec<usize>>()
    };

    // A real `fission serve` process starts sending, and is killed (SIGKILL) mid-batch.
    let mut child = Command::new(env!("CARGO_BIN_EXE_fission"))
        .envs(deployment.env.iter())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start fission");
    let started = Instant::now();
    while told(&wechat).iter().all(|n| *n == 0) {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the worker never sent anything"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    child.kill().expect("kill");
    child.wait().expect("reap");
    let sent_before_crash: usize = told(&wechat).iter().sum();
    assert!(
        sent_before_crash < inviters.len(),
        "killed before finishing ({sent_before_crash} sent)"
    );

    // After a restart every notice goes out; a duplicate is possible only for the messages
    // WeChat had accepted when the process died (one per follower being sent to).
    let restarted = TestApp::spawn(&deployment).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let open: i64 =
            sqlx::query_scalar("SELECT count(*) FROM outbox WHERE status NOT IN ('sent')")
                .fetch_one(&restarted.pool)
                .await
                .unwrap();
        if open == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "{open} notices still unsent");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let per_inviter = told(&wechat);
    assert!(per_inviter.iter().all(|n| *n >= 1), "{per_inviter:?}");
    let duplicates: usize = per_inviter.iter().map(|n| n - 1).sum();
    assert!(duplicates <= 16, "{duplicates} duplicates");
}
