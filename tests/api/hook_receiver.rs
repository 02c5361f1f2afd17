//! A webhook receiver for tests: a small HTTP server on 127.0.0.1:0 that keeps every request
//! it gets, and answers 500 while it is told to fail (the first N requests, or until told
//! otherwise). Also the documented signature recipe, recomputed here rather than borrowed from
//! Fission.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::dev::ServerHandle;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

use crate::helpers::{TestApp, ADMIN_TOKEN};

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Got {
    pub event: String,
    pub timestamp: String,
    pub signature: String,
    pub body: String,
    /// It was answered 2xx.
    pub accepted: bool,
}

impl Got {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).expect("a JSON body")
    }
}

#[derive(Default)]
struct Shared {
    got: Mutex<Vec<Got>>,
    fail_first: AtomicUsize,
    failing: AtomicBool,
}

pub struct Receiver {
    pub url: String,
    shared: Arc<Shared>,
    handle: ServerHandle,
}

impl Receiver {
    /// A receiver that answers 500 to its first `fail_first` requests, 204 after.
    pub async fn start(fail_first: usize) -> Receiver {
        let shared = Arc::new(Shared::default());
        shared.fail_first.store(fail_first, Ordering::SeqCst);
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the receiver");
        let url = format!(
            "http://127.0.0.1:{}/hook",
            listener.local_addr().expect("address").port()
        );
        let state = shared.clone();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(web::Data::new(state.clone()))
                .route("/hook", web::post().to(receive))
        })
        .workers(1)
        .listen(listener)
        .expect("listen")
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        Receiver {
            url,
            shared,
            handle,
        }
    }

    /// Answer 500 to everything (true) or as `start` said (false).
    pub fn set_failing(&self, failing: bool) {
        self.shared.failing.store(failing, Ordering::SeqCst);
    }

    pub fn all(&self) -> Vec<Got> {
        self.shared.got.lock().unwrap().clone()
    }

    pub fn accepted(&self) -> Vec<Got> {
        self.all().into_iter().filter(|g| g.accepted).collect()
    }

    /// Waits (up to `secs`) until `done` holds for the accepted requests; returns them.
    pub async fn wait_for(&self, secs: u64, done: impl Fn(&[Got]) -> bool) -> Vec<Got> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        loop {
            let accepted = self.accepted();
            if done(&accepted) {
                return accepted;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the receiver got {:#?}",
                self.all()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let handle = self.handle.clone();
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move { handle.stop(false).await });
        }
    }
}

async fn receive(state: web::Data<Arc<Shared>>, req: HttpRequest, body: String) -> HttpResponse {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let fail = state.failing.load(Ordering::SeqCst)
        || state
            .fail_first
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
    state.got.lock().unwrap().push(Got {
        event: header("x-fission-event"),
        timestamp: header("x-fission-timestamp"),
        signature: header("x-fission-signature"),
        body,
        accepted: !fail,
    });
    if fail {
        HttpResponse::InternalServerError().body("not now")
    } else {
        HttpResponse::NoContent().finish()
    }
}

/// The README's recipe: `sha256=` + hex HMAC-SHA256(secret, timestamp + "." + body).
pub fn expected_signature(secret: &str, timestamp: &str, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{timestamp}.{body}").as_bytes());
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Registers an endpoint through the API; returns the response (status, JSON body).
pub async fn register(app: &TestApp, url: &str, secret: &str, events: &[&str]) -> (u16, Value) {
    let response = app
        .http
        .post(format!("{}/api/v1/webhooks", app.address))
        .bearer_auth(ADMIN_TOKEN)
        .json(&serde_json::json!({ "url": url, "secret": secret, "events": events }))
        .send()
        .await
        .expect("api reachable");
    let status = response.status().as_u16();
    (status, response.json().await.expect("JSON"))
}
