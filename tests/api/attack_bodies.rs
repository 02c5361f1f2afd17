//! Anonymous clients cannot pin memory: the only form anyone may post (the login) is small and
//! url-encoded, and a body that stops arriving is given up on.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::admin_client::{with_admin, Operator};
use crate::helpers::{Deployment, FakeWechat, TestApp};

async fn app_with(extra: &[(&str, &str)]) -> (TestApp, FakeWechat) {
    let wechat = FakeWechat::start(100_000, None).await;
    let mut deployment = with_admin(Deployment::new(&wechat));
    for (k, v) in extra {
        deployment = deployment.set(k, v);
    }
    (TestApp::spawn(&deployment).await, wechat)
}

#[tokio::test]
async fn a_login_form_larger_than_a_login_is_refused() {
    let (app, _wechat) = app_with(&[]).await;
    let mut operator = Operator::new(&app);
    let csrf = operator.csrf("/admin/login").await;
    let padding = "x".repeat(64 * 1024);
    let response = operator
        .post_form(
            "/admin/login",
            &[
                ("csrf", &csrf),
                ("username", "admin"),
                ("password", "wrong"),
                ("padding", &padding),
            ],
        )
        .await;
    assert_eq!(response.status(), 413);
}

/// An upload to the login form is refused from its headers, before any of it is read: the
/// server answers while the client is still sending (before, it read up to 6 MB first).
#[tokio::test]
async fn the_login_form_takes_no_uploads() {
    let (app, _wechat) = app_with(&[("FISSION_BODY_TIMEOUT_SECS", "600")]).await;
    let mut operator = Operator::new(&app);
    operator.csrf("/admin/login").await;
    let cookie = operator.cookie.clone().unwrap();
    let head = format!(
        "POST /admin/login HTTP/1.1\r\nhost: x\r\ncookie: {cookie}\r\ncontent-type: multipart/form-data; boundary=b\r\ncontent-length: 5000000\r\n\r\n--b\r\n"
    );
    let answer = answer_to_a_stalled_body(&app, &head).await;
    assert!(answer.starts_with("HTTP/1.1 415"), "{answer:?}");
}

/// Sends `head` (and the start of a body), never the rest, and returns what the server says
/// within 30 s: "" when it hung up without an answer, "timeout" when it said nothing at all.
async fn answer_to_a_stalled_body(app: &TestApp, head: &str) -> String {
    let address = app.address.trim_start_matches("http://").to_string();
    let mut socket = TcpStream::connect(&address).await.unwrap();
    socket.write_all(head.as_bytes()).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut answer = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, socket.read(&mut buf)).await {
            Err(_) => return "timeout".into(),
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => {
                answer.extend_from_slice(&buf[..n]);
                if answer.windows(4).any(|w| w == b"\r\n\r\n") {
                    break;
                }
            }
        }
    }
    String::from_utf8_lossy(&answer).into_owned()
}

/// A client that sends the headers and a little of the body, then nothing: the server answers
/// or hangs up once the body read times out, instead of holding the request forever.
#[tokio::test]
async fn a_body_that_stops_arriving_is_given_up_on() {
    let (app, _wechat) = app_with(&[("FISSION_BODY_TIMEOUT_SECS", "1")]).await;
    let mut operator = Operator::new(&app);
    operator.csrf("/admin/login").await;
    let cookie = operator.cookie.clone().unwrap();
    let head = format!(
        "POST /admin/login HTTP/1.1\r\nhost: x\r\ncookie: {cookie}\r\ncontent-type: application/x-www-form-urlencoded\r\ncontent-length: 2000\r\n\r\nusername=admin&"
    );
    let answer = answer_to_a_stalled_body(&app, &head).await;
    assert_ne!(
        answer, "timeout",
        "the server still waits for the body after 30 s"
    );
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 4"),
        "{answer}"
    );
}
