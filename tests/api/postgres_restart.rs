//! PostgreSQL restarted under load: pushes during the restart are answered with an error (or
//! late), never `success` without being recorded; WeChat's retries of them credit exactly once;
//! the same instance carries on without a restart. The test runs its own PostgreSQL cluster
//! (the shared one is never touched), stopped and removed whatever happens.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use reqwest::StatusCode;

use crate::helpers::{openid, Deployment, FakeWechat, TestApp};

/// A PostgreSQL cluster of this test's own, in a temporary directory, on a free port.
struct PrivatePostgres {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    /// PostgreSQL refuses to run as root: as root, its tools run as the `postgres` user.
    as_postgres: bool,
}

impl PrivatePostgres {
    fn start() -> PrivatePostgres {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .expect("PostgreSQL is installed under /usr/lib/postgresql")
            .filter_map(|e| Some(e.ok()?.path().join("bin")))
            .filter(|bin| bin.join("initdb").exists())
            .max()
            .expect("an initdb");
        let dir = std::env::temp_dir().join(format!("fission-pg-{}", uuid::Uuid::new_v4()));
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let as_postgres = Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout.starts_with(b"0\n"));
        std::fs::create_dir_all(&dir).expect("cluster directory");
        let pg = PrivatePostgres {
            bin,
            dir,
            port,
            as_postgres,
        };
        if as_postgres {
            pg.run("chown", &["postgres", pg.dir.to_str().expect("utf-8 path")]);
        }
        let data = pg.data();
        pg.tool(
            "initdb",
            &[
                "-D",
                &data,
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        );
        pg.resume();
        pg
    }

    fn data(&self) -> String {
        self.dir.join("data").display().to_string()
    }

    fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    fn resume(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.display()
        );
        let log = self.dir.join("log").display().to_string();
        self.tool(
            "pg_ctl",
            &[
                "-D",
                &self.data(),
                "-o",
                &options,
                "-l",
                &log,
                "-w",
                "start",
            ],
        );
    }

    /// A fast shutdown (clients disconnected, a checkpoint), `down` without a server, and a
    /// start: an operator's restart or a failover.
    fn restart(&self, down: Duration) {
        self.tool("pg_ctl", &["-D", &self.data(), "-m", "fast", "-w", "stop"]);
        std::thread::sleep(down);
        self.resume();
    }

    fn tool(&self, name: &str, args: &[&str]) {
        let program = self.bin.join(name).display().to_string();
        if self.as_postgres {
            let mut all = vec!["-u", "postgres", "--", program.as_str()];
            all.extend_from_slice(args);
            self.run("runuser", &all);
        } else {
            self.run(&program, args);
        }
    }

    fn run(&self, program: &str, args: &[&str]) {
        let status = Command::new(program)
            .args(args)
            .current_dir(Path::new("/"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap_or_else(|e| panic!("running {program}: {e}"));
        assert!(status.success(), "{program} {args:?} failed");
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let data = self.data();
        let program = self.bin.join("pg_ctl").display().to_string();
        let args = ["-D", data.as_str(), "-m", "immediate", "stop"];
        let mut command = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--", program.as_str()]);
            c
        } else {
            Command::new(&program)
        };
        let _ = command
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

const RATE: u64 = 50;
const TOTAL: usize = 600;
const RESTART_AT: usize = 150;
/// How long the database stays down (the issue measured a 4 s restart).
const DOWN: Duration = Duration::from_secs(4);
const INVITERS: usize = 10;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restarted_under_load_loses_no_answered_push() {
    let pg = Arc::new(PrivatePostgres::start());
    let wechat = FakeWechat::start(100_000, None).await;
    let deployment = Deployment::new(&wechat).set("DATABASE_URL", &pg.url("fission_restart"));
    let app = Arc::new(TestApp::spawn(&deployment).await);
    let mut scenes = Vec::new();
    for i in 0..INVITERS {
        let code = app.issue_code(&openid("pginviter", i)).await;
        scenes.push(code["scene_id"].as_i64().expect("scene"));
    }
    let t0 = Utc::now().timestamp();

    let mut pacing = tokio::time::interval(Duration::from_millis(1000 / RATE));
    let mut pushes = Vec::new();
    let mut restart = None;
    for i in 0..TOTAL {
        pacing.tick().await;
        if i == RESTART_AT {
            let pg = pg.clone();
            restart = Some(tokio::task::spawn_blocking(move || {
                let started = std::time::Instant::now();
                pg.restart(DOWN);
                started.elapsed()
            }));
        }
        let app = app.clone();
        let scene = scenes[i % INVITERS];
        pushes.push(tokio::spawn(async move {
            let answer = tokio::time::timeout(Duration::from_secs(5), async {
                let response = app
                    .subscribe(&openid("pginvitee", i), Some(scene), t0 + 1)
                    .await;
                (response.status(), response.text().await.unwrap_or_default())
            })
            .await;
            matches!(answer, Ok((StatusCode::OK, body)) if !body.is_empty())
        }));
    }
    let downtime = restart
        .expect("restarted")
        .await
        .expect("the restart finished");
    let mut answered = Vec::new();
    let mut unanswered = Vec::new();
    for (i, push) in pushes.into_iter().enumerate() {
        if push.await.expect("push task") {
            answered.push(openid("pginvitee", i));
        } else {
            unanswered.push(i);
        }
    }
    eprintln!(
        "postgres restart ({downtime:?} down): {} of {TOTAL} pushes answered within 5 s, {} not",
        answered.len(),
        unanswered.len()
    );
    // Whatever was answered is recorded and credited.
    let recorded: i64 =
        sqlx::query_scalar("SELECT count(*) FROM referrals WHERE invitee_openid = ANY($1)")
            .bind(&answered)
            .fetch_one(&app.pool)
            .await
            .expect("count");
    assert_eq!(recorded, answered.len() as i64, "an answered push was lost");

    // WeChat retries the rest (three times, as it does); the same instance takes them.
    for i in &unanswered {
        let scene = scenes[i % INVITERS];
        let mut ok = false;
        for _ in 0..3 {
            let retry = app
                .subscribe(&openid("pginvitee", *i), Some(scene), t0 + 1)
                .await;
            if retry.status() == StatusCode::OK {
                ok = true;
                break;
            }
        }
        assert!(ok, "push {i} refused on every retry after the restart");
    }
    let credited: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM referrals WHERE invitee_openid LIKE 'opginvitee%'",
    )
    .fetch_one(&app.pool)
    .await
    .expect("count");
    assert_eq!(credited, TOTAL as i64);
    let counted: i64 = sqlx::query_scalar(
        "SELECT coalesce(sum(invites), 0)::bigint FROM inviter_stats WHERE openid LIKE 'opginviter%'",
    )
    .fetch_one(&app.pool)
    .await
    .expect("sum");
    assert_eq!(counted, TOTAL as i64);
}
