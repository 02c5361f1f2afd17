//! Signing in: wrong passwords, throttling (per address and per account, across instances),
//! session renewal on login, logout ending the session, and `fission admin add-user`.

use std::io::Write;
use std::process::{Command, Stdio};

use crate::admin_client::{with_admin, Operator, ADMIN_PASSWORD};
use crate::helpers::{Deployment, FakeWechat, TestApp};

#[tokio::test]
async fn a_wrong_password_is_refused() {
    let wechat = FakeWechat::start(100_000, None).await;
    let app = TestApp::spawn(&with_admin(Deployment::new(&wechat))).await;
    let mut operator = Operator::new(&app);
    let refused = operator.login_with("admin", "not the password").await;
    assert_eq!(refused.status(), 401);
    assert!(refused.text().await.unwrap().contains("用户名或密码错误"));
    assert_eq!(operator.get("/admin").await.status(), 302);
    let unknown = operator.login_with("nobody", ADMIN_PASSWORD).await;
    assert_eq!(unknown.status(), 401);
    operator.login().await;
    assert_eq!(operator.get("/admin").await.status(), 200);
}

#[tokio::test]
async fn five_failures_from_one_address_lock_it_out_on_every_instance() {
    let wechat = FakeWechat::start(100_000, None).await;
    let deployment = with_admin(Deployment::new(&wechat));
    let first = TestApp::spawn(&deployment).await;
    let second = TestApp::spawn(&deployment).await;
    let mut operator = Operator::new(&first);
    for i in 0..5 {
        // Different accounts each time: only the address counter reaches five.
        let r = operator.login_with(&format!("guess{i}"), "wrong").await;
        assert_eq!(r.status(), 401);
    }
    let mut elsewhere = Operator::new(&second);
    let throttled = elsewhere.login_with("admin", ADMIN_PASSWORD).await;
    assert_eq!(throttled.status(), 429);
    assert_eq!(elsewhere.get("/admin").await.status(), 302);
}

#[tokio::test]
async fn five_failures_for_one_account_lock_it_whatever_the_address() {
    let wechat = FakeWechat::start(100_000, None).await;
    let app = TestApp::spawn(&with_admin(Deployment::new(&wechat))).await;
    for i in 0..5 {
        let outcome = fission::auth::login(
            &app.app_state,
            &format!("203.0.113.{i}"),
            "admin",
            "wrong".to_string().into(),
        )
        .await
        .unwrap();
        assert!(matches!(
            outcome,
            fission::auth::LoginOutcome::WrongPassword
        ));
    }
    let mut operator = Operator::new(&app);
    assert_eq!(
        operator.login_with("admin", ADMIN_PASSWORD).await.status(),
        429
    );
    // Another account from this address is not affected.
    fission::auth::add_user(
        &app.pool,
        "ops",
        "another password".to_string().into(),
        None,
    )
    .await
    .unwrap();
    assert_eq!(
        operator
            .login_with("ops", "another password")
            .await
            .status(),
        303
    );
}

#[tokio::test]
async fn logging_in_starts_a_new_session_and_logging_out_ends_it() {
    let wechat = FakeWechat::start(100_000, None).await;
    let app = TestApp::spawn(&with_admin(Deployment::new(&wechat))).await;
    let mut operator = Operator::new(&app);
    operator.csrf("/admin/login").await;
    let before = operator
        .cookie
        .clone()
        .expect("the login form sets a session");
    operator.login().await;
    let after = operator.cookie.clone().expect("signed-in cookie");
    assert_ne!(before, after, "the session cookie must change on login");
    assert_eq!(operator.get("/admin").await.status(), 200);

    // The pre-login cookie (say, planted by an attacker) is not signed in.
    let mut planted = Operator::new(&app);
    planted.cookie = Some(before);
    assert_eq!(planted.get("/admin").await.status(), 302);

    // Logout ends the session even for someone who kept a copy of the cookie.
    let mut copy = Operator::new(&app);
    copy.cookie = Some(after);
    let csrf = operator.csrf("/admin").await;
    assert_eq!(
        operator
            .post_form("/admin/logout", &[("csrf", &csrf)])
            .await
            .status(),
        303
    );
    assert_eq!(copy.get("/admin").await.status(), 302);
    assert_eq!(operator.get("/admin").await.status(), 302);
}

#[tokio::test]
async fn add_user_reads_the_password_from_stdin() {
    let wechat = FakeWechat::start(100_000, None).await;
    let deployment = Deployment::new(&wechat);
    let app = TestApp::spawn(&deployment).await;
    let mut child = Command::new(env!("CARGO_BIN_EXE_fission"))
        .args(["admin", "add-user", "--username", "ops.lead"])
        .envs(deployment.env.iter())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run fission");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"a long enough password\n")
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut operator = Operator::new(&app);
    assert_eq!(
        operator
            .login_with("ops.lead", "a long enough password")
            .await
            .status(),
        303
    );
    // Without FISSION_ADMIN_PASSWORD there is no built-in admin account.
    let mut other = Operator::new(&app);
    assert_eq!(
        other.login_with("admin", ADMIN_PASSWORD).await.status(),
        401
    );
}
