//! Test helpers: the simulator on a real socket, so requests go through the same URL encoding
//! and HTTP handling a real client's do.

use std::net::TcpListener;

use actix_web::{App, HttpServer};
use serde_json::{json, Value};

use super::{SimConfig, Simulator};

pub const TEST_APPID: &str = "wxd0e1a2b3c4d5e6f7";
pub const TEST_SECRET: &str = "0123456789abcdef0123456789abcdef";

pub struct TestSim {
    pub sim: Simulator,
    /// e.g. `http://127.0.0.1:40123` (the simulator is mounted at the root).
    pub base: String,
    pub http: reqwest::Client,
}

pub fn test_config(base: &str) -> SimConfig {
    SimConfig {
        appid: TEST_APPID.into(),
        secret: TEST_SECRET.into(),
        token: "testtoken".into(),
        public_base: base.into(),
        ..SimConfig::default()
    }
}

/// The simulator with the test account, mounted at the root of its own server.
pub async fn spawn() -> TestSim {
    spawn_with(|_| {}).await
}

pub async fn spawn_with(adjust: impl FnOnce(&mut SimConfig)) -> TestSim {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let mut cfg = test_config(&base);
    adjust(&mut cfg);
    let sim = Simulator::new(cfg);
    let mounted = sim.clone();
    let server = HttpServer::new(move || {
        let s = mounted.clone();
        App::new().configure(move |c| s.configure(c))
    })
    .workers(1)
    .listen(listener)
    .expect("listen")
    .run();
    actix_web::rt::spawn(server);
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    TestSim { sim, base, http }
}

impl TestSim {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http.get(self.url(path)).send().await.expect("GET")
    }

    pub async fn get_json(&self, path: &str) -> Value {
        self.get(path).await.json().await.expect("JSON")
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> Value {
        self.http
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .expect("POST")
            .json()
            .await
            .expect("JSON")
    }

    /// A fresh global access_token.
    pub async fn access_token(&self) -> String {
        let body = self
            .get_json(&format!(
                "/cgi-bin/token?grant_type=client_credential&appid={TEST_APPID}&secret={TEST_SECRET}"
            ))
            .await;
        body["access_token"].as_str().expect("token").to_owned()
    }

    /// `POST /cgi-bin/qrcode/create` with a fresh token.
    pub async fn create_qr(&self, body: Value) -> Value {
        let token = self.access_token().await;
        self.post_json(
            &format!("/cgi-bin/qrcode/create?access_token={token}"),
            &body,
        )
        .await
    }

    /// A permanent numeric-scene ticket.
    pub async fn permanent_ticket(&self, scene_id: i64) -> String {
        let reply = self
            .create_qr(json!({"action_name":"QR_LIMIT_SCENE","action_info":{"scene":{"scene_id":scene_id}}}))
            .await;
        reply["ticket"].as_str().expect("ticket").to_owned()
    }
}
