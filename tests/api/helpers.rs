//! Test harness: a stand-in WeChat server (Fission's own simulator, which validates requests as
//! WeChat does, started on its own port), and `TestApp` — the real application on a random
//! port with a fresh database and its own Redis key prefix, so tests never share state.

use std::collections::HashMap;

use actix_web::dev::ServerHandle;
use actix_web::{App, HttpServer};
use chrono::Utc;
use fission::config::Settings;
use fission::sandbox::{SimConfig, Simulator};
use fission::startup::Application;
use fission::wechat::crypto::MessageCrypto;
use fission::wechat::message::Push;
use fission::wechat::outgoing::{event, nonce, sign_push};
use serde_json::Value;
use sqlx::PgPool;

pub const APPID: &str = "wx7e57fa55c0de0001";
pub const SECRET: &str = "test-secret-0123456789abcdef";
pub const TOKEN: &str = "callbacktoken";
pub const ADMIN_TOKEN: &str = "admin-token-for-tests";
pub const AES_KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
pub const REDIS_URL: &str = "redis://127.0.0.1:6379";

/// The stand-in WeChat server.
pub struct FakeWechat {
    pub sim: Simulator,
    pub base: String,
    handle: ServerHandle,
}

impl FakeWechat {
    pub async fn start(permanent_quota: u32, callback_url: Option<String>) -> FakeWechat {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the stand-in");
        let base = format!(
            "http://127.0.0.1:{}",
            listener.local_addr().expect("address").port()
        );
        let sim = Simulator::new(SimConfig {
            appid: APPID.into(),
            secret: SECRET.into(),
            token: TOKEN.into(),
            encoding_aes_key: None,
            callback_url,
            public_base: base.clone(),
            permanent_quota,
            account_name: "测试号".into(),
            ..SimConfig::default()
        });
        let routes = sim.clone();
        let server = HttpServer::new(move || {
            let sim = routes.clone();
            App::new().configure(move |cfg| sim.configure(cfg))
        })
        .workers(1)
        .listen(listener)
        .expect("listen")
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        FakeWechat { sim, base, handle }
    }
}

impl Drop for FakeWechat {
    fn drop(&mut self) {
        let handle = self.handle.clone();
        // Stopping needs the runtime; if the test's runtime is gone the server is gone with it.
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move { handle.stop(false).await });
        }
    }
}

/// Everything that identifies one deployment under test: several instances may share it.
#[derive(Clone)]
pub struct Deployment {
    pub env: HashMap<String, String>,
}

impl Deployment {
    pub fn new(wechat: &FakeWechat) -> Deployment {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let db_name = format!("fission_test_{id}");
        let storage_dir = std::env::temp_dir()
            .join(format!("fission-test-{id}"))
            .display()
            .to_string();
        let mut env: HashMap<String, String> = [
            (
                "DATABASE_URL",
                format!("postgres://postgres@127.0.0.1:5432/{db_name}"),
            ),
            ("REDIS_URL", REDIS_URL.to_string()),
            ("FISSION_REDIS_PREFIX", format!("test:{id}:")),
            ("FISSION_BIND", "127.0.0.1:0".to_string()),
            ("FISSION_STORAGE", format!("file://{storage_dir}")),
            ("FISSION_ADMIN_TOKEN", ADMIN_TOKEN.to_string()),
            ("WECHAT_APPID", APPID.to_string()),
            ("WECHAT_SECRET", SECRET.to_string()),
            ("WECHAT_TOKEN", TOKEN.to_string()),
            ("WECHAT_API_BASE", wechat.base.clone()),
            ("WECHAT_MP_BASE", wechat.base.clone()),
            ("WECHAT_OPEN_BASE", wechat.base.clone()),
            ("DATABASE_MAX_CONNECTIONS", "12".to_string()),
            ("FISSION_OUTBOX_LEASE_SECS", "3".to_string()),
            ("RUST_LOG", "warn".to_string()),
            // The stand-in serves the avatars its OAuth hands out, on a loopback address.
            (
                "FISSION_AVATAR_HOSTS",
                wechat.base.trim_start_matches("http://").to_string(),
            ),
            ("FISSION_AVATAR_ALLOW_PRIVATE", "true".to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        env.insert("FISSION_CONFIG".into(), "/nonexistent".into());
        Deployment { env }
    }

    /// A deployment in sandbox mode: no AppID, the built-in simulator stands in for WeChat.
    pub fn sandbox() -> Deployment {
        let wechat_keys = [
            "WECHAT_APPID",
            "WECHAT_SECRET",
            "WECHAT_TOKEN",
            "WECHAT_API_BASE",
            "WECHAT_MP_BASE",
            "WECHAT_OPEN_BASE",
        ];
        let id = uuid::Uuid::new_v4().simple().to_string();
        let mut env: HashMap<String, String> = [
            (
                "DATABASE_URL",
                format!("postgres://postgres@127.0.0.1:5432/fission_test_{id}"),
            ),
            ("REDIS_URL", REDIS_URL.to_string()),
            ("FISSION_REDIS_PREFIX", format!("test:{id}:")),
            ("FISSION_BIND", "127.0.0.1:0".to_string()),
            (
                "FISSION_STORAGE",
                format!(
                    "file://{}",
                    std::env::temp_dir()
                        .join(format!("fission-test-{id}"))
                        .display()
                ),
            ),
            ("FISSION_ADMIN_TOKEN", ADMIN_TOKEN.to_string()),
            ("FISSION_CONFIG", "/nonexistent".to_string()),
            ("RUST_LOG", "warn".to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        for key in wechat_keys {
            env.remove(key);
        }
        Deployment { env }
    }

    pub fn set(mut self, key: &str, value: &str) -> Deployment {
        self.env.insert(key.to_string(), value.to_string());
        self
    }

    pub fn settings(&self) -> Settings {
        Settings::from_lookup(|k| self.env.get(k).cloned()).expect("test settings")
    }
}

pub struct TestApp {
    pub address: String,
    pub pool: PgPool,
    pub http: reqwest::Client,
    pub crypto: Option<MessageCrypto>,
    pub app_state: fission::state::AppState,
}

impl TestApp {
    pub async fn spawn(deployment: &Deployment) -> TestApp {
        let settings = deployment.settings();
        fission::telemetry::init("warn", fission::config::LogFormat::Text);
        install_crypto_provider();
        let crypto = deployment
            .env
            .get("WECHAT_ENCODING_AES_KEY")
            .map(|k| MessageCrypto::new(k, TOKEN, APPID).expect("test AES key"));
        let app = Application::build(settings)
            .await
            .expect("application starts");
        let port = app.port();
        let pool = app.state().pool.clone();
        let app_state = app.state().clone();
        tokio::spawn(app.run_until_stopped());
        TestApp {
            address: format!("http://127.0.0.1:{port}"),
            pool,
            // Idle connections are dropped well before the server's 5 s keep-alive closes them,
            // so a request never races the server's close on a reused connection.
            http: reqwest::Client::builder()
                .pool_max_idle_per_host(64)
                .pool_idle_timeout(std::time::Duration::from_secs(2))
                .build()
                .expect("client"),
            crypto,
            app_state,
        }
    }

    /// Signs and posts a push as WeChat would (encrypted when the app runs in safe mode).
    pub async fn push(&self, push: &Push) -> reqwest::Response {
        let signed = sign_push(
            TOKEN,
            self.crypto.as_ref(),
            push,
            Utc::now().timestamp(),
            &nonce(),
        );
        self.http
            .post(format!("{}/wechat/callback", self.address))
            .query(&signed.query)
            .header("content-type", "text/xml")
            .body(signed.body)
            .send()
            .await
            .expect("callback reachable")
    }

    pub async fn subscribe(
        &self,
        openid: &str,
        scene: Option<i64>,
        create_time: i64,
    ) -> reqwest::Response {
        let key = scene.map(|s| format!("qrscene_{s}"));
        let ticket = scene.map(|_| "TICKET".to_string());
        self.push(&event(
            "gh_test",
            openid,
            create_time,
            "subscribe",
            key,
            ticket,
        ))
        .await
    }

    /// `subscribe` with owned arguments, for building many futures at once.
    pub async fn subscribe_owned(
        &self,
        openid: String,
        scene: i64,
        create_time: i64,
    ) -> reqwest::Response {
        self.subscribe(&openid, Some(scene), create_time).await
    }

    pub async fn scan(&self, openid: &str, scene: i64, create_time: i64) -> reqwest::Response {
        self.push(&event(
            "gh_test",
            openid,
            create_time,
            "SCAN",
            Some(scene.to_string()),
            Some("TICKET".into()),
        ))
        .await
    }

    pub async fn unsubscribe(&self, openid: &str, create_time: i64) -> reqwest::Response {
        self.push(&event(
            "gh_test",
            openid,
            create_time,
            "unsubscribe",
            None,
            None,
        ))
        .await
    }

    pub async fn api_get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.address))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .expect("api reachable")
    }

    pub async fn issue_code(&self, openid: &str) -> Value {
        let response = self
            .http
            .post(format!(
                "{}/api/v1/users/{openid}/invite-code",
                self.address
            ))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .expect("api reachable");
        let status = response.status();
        let body = response.text().await.expect("body");
        assert_eq!(status, 200, "issuing a code for {openid}: {body}");
        serde_json::from_str(&body).expect("json")
    }

    pub async fn events_count(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM events")
            .fetch_one(&self.pool)
            .await
            .expect("count")
    }
}

/// The test binary links two TLS backends (the browser driver brings its own); pick one.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A new deployment and one instance of it against a new stand-in WeChat.
pub async fn spawn_app() -> (TestApp, FakeWechat) {
    let wechat = FakeWechat::start(100_000, None).await;
    let app = TestApp::spawn(&Deployment::new(&wechat)).await;
    (app, wechat)
}

/// An openid shaped like WeChat's (28 characters).
pub fn openid(tag: &str, n: usize) -> String {
    let base = format!("o{tag}{n:0>8}");
    format!("{base:_<28}")
}
