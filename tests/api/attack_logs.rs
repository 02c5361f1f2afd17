//! Secrets never reach the logs: the real binary runs against a WeChat that fails every call
//! kind (HTTP 500, connection reset, no answer at all) while a follower signs in, a script
//! issues a code, a follower asks for their poster and an operator signs in; its captured
//! output, in text and in JSON, holds no access_token, AppSecret, AES key, admin token or
//! password. It also shows the client address from the connection, not from a header anyone can
//! set, unless the request came through a configured trusted proxy.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fission::wechat::crypto::MessageCrypto;
use fission::wechat::message::Push;
use fission::wechat::outgoing::{nonce, sign_push};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::admin_client::{Operator, ADMIN_PASSWORD};
use crate::helpers::{openid, Deployment, FakeWechat, ADMIN_TOKEN, AES_KEY, APPID, SECRET, TOKEN};
use crate::invite::cookie_client;

const ACCESS_TOKEN: &str = "ACCESSTOKENSENTINEL_7Hq2vX9pLm";
const FORGED_CLIENT: &str = "198.51.100.77";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    ServerError,
    Reset,
    NoAnswer,
}

/// What the hostile WeChat does next: whether token requests fail too, and how.
#[derive(Clone, Copy)]
struct Mode {
    fault: Fault,
    token_fails: bool,
}

/// A WeChat on a bad day: hands out `ACCESS_TOKEN` unless told to fail token requests too, and
/// fails every other call with the current fault.
struct HostileWechat {
    base: String,
    mode: Arc<Mutex<Mode>>,
}

impl HostileWechat {
    async fn start() -> HostileWechat {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("address"));
        let mode = Arc::new(Mutex::new(Mode {
            fault: Fault::ServerError,
            token_fails: false,
        }));
        let shared = mode.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let mode = *shared.lock().unwrap();
                tokio::spawn(answer(socket, mode));
            }
        });
        HostileWechat { base, mode }
    }

    fn set(&self, fault: Fault, token_fails: bool) {
        *self.mode.lock().unwrap() = Mode { fault, token_fails };
    }
}

async fn answer(mut socket: tokio::net::TcpStream, mode: Mode) {
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match socket.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let head = String::from_utf8_lossy(&head).to_string();
    let path = head.split_whitespace().nth(1).unwrap_or("").to_string();
    let is_token = path.starts_with("/cgi-bin/token") || path.starts_with("/cgi-bin/stable_token");
    if is_token && !mode.token_fails {
        let body = format!(r#"{{"access_token":"{ACCESS_TOKEN}","expires_in":7200}}"#);
        let reply = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        let _ = socket.write_all(reply.as_bytes()).await;
        return;
    }
    match mode.fault {
        Fault::ServerError => {
            let body = "upstream exploded";
            let reply = format!(
                "HTTP/1.1 500 Internal Server Error\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = socket.write_all(reply.as_bytes()).await;
        }
        Fault::Reset => {
            // A zero linger makes closing send a reset (and never blocks).
            #[allow(deprecated)]
            let _ = socket.set_linger(Some(Duration::ZERO));
            drop(socket);
        }
        Fault::NoAnswer => {
            // Hold the connection open until the client gives up.
            let _ = socket.read(&mut buf).await;
            tokio::time::sleep(Duration::from_secs(120)).await;
        }
    }
}

/// The `fission` binary with its output captured line by line.
struct Server {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    base: String,
}

impl Server {
    async fn start(deployment: &Deployment) -> Server {
        let mut command = Command::new(env!("CARGO_BIN_EXE_fission"));
        command
            .arg("serve")
            .env_remove("RUST_LOG")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in &deployment.env {
            command.env(k, v);
        }
        let mut child = command.spawn().expect("fission starts");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let stdout = child.stdout.take().expect("stdout");
        let stderr = child.stderr.take().expect("stderr");
        for stream in [
            Box::new(stdout) as Box<dyn std::io::Read + Send>,
            Box::new(stderr),
        ] {
            let lines = lines.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    lines.lock().unwrap().push(line);
                }
            });
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        let port = loop {
            let found = lines.lock().unwrap().iter().find_map(|l| {
                if !l.contains("listening") {
                    return None;
                }
                let at = l.find("127.0.0.1:")? + "127.0.0.1:".len();
                let digits: String = l[at..].chars().take_while(char::is_ascii_digit).collect();
                digits.parse::<u16>().ok()
            });
            if let Some(port) = found {
                break port;
            }
            assert!(
                Instant::now() < deadline,
                "fission did not start: {:?}",
                lines.lock().unwrap()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        Server {
            child,
            lines,
            base: format!("http://127.0.0.1:{port}"),
        }
    }

    fn output(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn text_push(openid: &str, content: &str) -> Push {
    Push {
        to_user: "gh_test".into(),
        from_user: openid.into(),
        create_time: chrono::Utc::now().timestamp(),
        msg_type: "text".into(),
        event: None,
        event_key: None,
        ticket: None,
        content: Some(content.into()),
        msg_id: Some(rand::random::<i64>().abs()),
        subscriptions: Vec::new(),
    }
}

/// Everything that makes WeChat calls, once: a follower signing in (the code exchange carries
/// the AppSecret), a script issuing a code, a follower asking for their poster.
async fn make_wechat_calls(server: &Server, n: usize) {
    let http = reqwest::Client::new();
    let follower = cookie_client();
    let sign_in = async {
        let start = follower
            .get(format!("{}/invite", server.base))
            .send()
            .await
            .expect("invite page");
        let location = start.headers()["location"].to_str().unwrap().to_string();
        let state = reqwest::Url::parse(&location)
            .unwrap()
            .query_pairs()
            .find(|(k, _)| k == "state")
            .map(|(_, v)| v.into_owned())
            .expect("state");
        let back = follower
            .get(format!("{}/invite/oauth", server.base))
            .query(&[("code", "oauthcode"), ("state", state.as_str())])
            .send()
            .await
            .expect("oauth return");
        assert!(back.status().is_server_error(), "{}", back.status());
    };
    let issue = async {
        let response = http
            .post(format!(
                "{}/api/v1/users/{}/invite-code",
                server.base,
                openid("logs", n)
            ))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .expect("api");
        assert!(!response.status().is_success());
    };
    let poster = async {
        let crypto = MessageCrypto::new(AES_KEY, TOKEN, APPID).unwrap();
        let push = text_push(&openid("logsposter", n), "海报");
        let signed = sign_push(
            TOKEN,
            Some(&crypto),
            &push,
            chrono::Utc::now().timestamp(),
            &nonce(),
        );
        let response = http
            .post(format!("{}/wechat/callback", server.base))
            .query(&signed.query)
            .header("content-type", "text/xml")
            .body(signed.body)
            .send()
            .await
            .expect("callback");
        assert_eq!(response.status(), 200);
    };
    tokio::join!(sign_in, issue, poster);
}

async fn run(format: &str, trusted_proxy: bool) {
    let hostile = HostileWechat::start().await;
    let stand_in = FakeWechat::start(100_000, None).await;
    let mut deployment = Deployment::new(&stand_in)
        .set("WECHAT_API_BASE", &hostile.base)
        .set("WECHAT_MP_BASE", &hostile.base)
        .set("WECHAT_USE_STABLE_TOKEN", "false")
        .set("WECHAT_ENCODING_AES_KEY", AES_KEY)
        .set("FISSION_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .set("FISSION_LOG_FORMAT", format)
        .set("RUST_LOG", "info");
    if trusted_proxy {
        deployment = deployment.set("FISSION_TRUSTED_PROXIES", "127.0.0.1");
    }
    let server = Server::start(&deployment).await;

    let mut n = 0;
    for fault in [Fault::ServerError, Fault::Reset, Fault::NoAnswer] {
        for token_fails in [true, false] {
            hostile.set(fault, token_fails);
            n += 1;
            make_wechat_calls(&server, n).await;
        }
    }
    let mut operator = Operator {
        base: server.base.clone(),
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .default_headers(
                [(
                    reqwest::header::HeaderName::from_static("x-forwarded-for"),
                    reqwest::header::HeaderValue::from_static(FORGED_CLIENT),
                )]
                .into_iter()
                .collect(),
            )
            .build()
            .unwrap(),
        cookie: None,
    };
    operator.login().await;
    assert_eq!(
        operator
            .login_with("admin", "wrong-password-1")
            .await
            .status(),
        401
    );

    let logs = server.output();
    for secret in [
        ACCESS_TOKEN,
        SECRET,
        AES_KEY,
        ADMIN_TOKEN,
        ADMIN_PASSWORD,
        "wrong-password-1",
    ] {
        let leaked: Vec<&str> = logs.lines().filter(|l| l.contains(secret)).collect();
        assert!(
            leaked.is_empty(),
            "{format} logs carry {secret}:\n{}",
            leaked.join("\n")
        );
    }
    // The failures were logged (the test would prove nothing otherwise).
    assert!(
        logs.matches("could not reach WeChat").count() >= 3,
        "{format} logs:\n{logs}"
    );
    assert!(logs.contains("operator signed in"), "{logs}");
    if trusted_proxy {
        assert!(logs.contains(FORGED_CLIENT), "{logs}");
    } else {
        assert!(
            !logs.contains(FORGED_CLIENT),
            "{format} logs trust X-Forwarded-For"
        );
    }
}

#[tokio::test]
async fn wechat_failures_leave_no_secret_in_text_logs() {
    run("text", false).await;
}

#[tokio::test]
async fn wechat_failures_leave_no_secret_in_json_logs() {
    run("json", true).await;
}
