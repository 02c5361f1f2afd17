//! The outbox survives a crash: an instance killed while sending leaves nothing unsent.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chrono::Utc;

use crate::helpers::{openid, Deployment, FakeWechat, TestApp};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_batch_loses_no_notification() {
    let wechat = FakeWechat::start(100_000, None).await;
    let deployment = Deployment::new(&wechat);
    // Credits are made by an instance without workers, so the messages wait in the outbox.
    let quiet = TestApp::spawn(&deployment.clone().set("FISSION_WORKERS", "false")).await;
    let inviter = openid("crash", 1);
    wechat.sim.add_user(&inviter, "crash", true);
    let scene = quiet.issue_code(&inviter).await["scene_id"]
        .as_i64()
        .unwrap();
    let now = Utc::now().timestamp();
    let credits = 400;
    let pushes = (0..credits).map(|i| quiet.subscribe_owned(openid("crashf", i), scene, now));
    futures_util::future::join_all(pushes).await;
    let queued: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox WHERE status = 'pending'")
        .fetch_one(&quiet.pool)
        .await
        .unwrap();
    assert_eq!(queued, credits as i64);

    // A real `fission serve` process starts sending, and is killed (SIGKILL) mid-batch.
    let mut child = Command::new(env!("CARGO_BIN_EXE_fission"))
        .envs(deployment.env.iter())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start fission");
    let started = Instant::now();
    while wechat.sim.inbox(&inviter).is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the worker never sent anything"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    child.kill().expect("kill");
    child.wait().expect("reap");
    let sent_before_crash = wechat.sim.inbox(&inviter).len();
    assert!(
        sent_before_crash < credits,
        "killed before finishing ({sent_before_crash} sent)"
    );

    // After a restart every notification goes out; a duplicate is possible only for the one
    // message WeChat had accepted when the process died.
    let restarted = TestApp::spawn(&deployment).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let pending: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox WHERE status <> 'sent'")
            .fetch_one(&restarted.pool)
            .await
            .unwrap();
        if pending == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "{pending} messages still unsent");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let delivered = wechat.sim.inbox(&inviter).len();
    assert!(
        delivered >= credits && delivered <= credits + 1,
        "{delivered} delivered for {credits} credits"
    );
}
