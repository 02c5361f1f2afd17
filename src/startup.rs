//! Builds the application: database (created and migrated), shared store, WeChat client,
//! storage, the route table, background workers, and — in sandbox mode — the built-in WeChat
//! simulator. `Application::build` binds its own listener, so tests can ask for port 0.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::body::MessageBody;
use actix_web::cookie::Key;
use actix_web::dev::{Server, ServerHandle, ServiceRequest, ServiceResponse};
use actix_web::middleware::{from_fn, Next};
use actix_web::{web, App, HttpServer};
use anyhow::Context;
use secrecy::ExposeSecret;
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;
use tracing_actix_web::TracingLogger;

use crate::config::Settings;
use crate::push::{BatchLimits, PushQueue};
use crate::sandbox::{SimConfig, Simulator};
use crate::services::Services;
use crate::shared_store::SharedStore;
use crate::state::AppState;
use crate::storage::Storage;
use crate::telemetry::{Metrics, RequestSpan};
use crate::wechat::crypto::MessageCrypto;
use crate::wechat::WechatClient;
use crate::{db, jobs, routes};

pub struct Application {
    port: u16,
    server: Server,
    state: AppState,
    simulator: Option<Simulator>,
    shutdown: watch::Sender<bool>,
    workers: Vec<JoinHandle<()>>,
}

impl Application {
    pub async fn build(mut settings: Settings) -> anyhow::Result<Application> {
        let listener = TcpListener::bind(&settings.bind)
            .with_context(|| format!("binding {}", settings.bind))?;
        let addr = listener.local_addr()?;
        let local_base = local_base(addr);
        let public_url = settings
            .public_url
            .clone()
            .unwrap_or_else(|| local_base.clone());
        let simulator = settings
            .sandbox
            .then(|| sandbox(&mut settings, &local_base, &public_url));
        let state = connect(settings, &public_url).await?;
        crate::auth::ensure_builtin_admin(&state).await?;
        let run_workers = state.settings.run_workers;

        let data = web::Data::new(state.clone());
        let sim = simulator.clone();
        let cookies = routes::sessions::Cookies::new(
            session_key(&state.settings),
            public_url.starts_with("https://"),
        );
        let trusted_proxies = web::Data::new(state.settings.trusted_proxies.clone());
        let server = HttpServer::new(move || {
            let cookies = cookies.clone();
            let app = App::new()
                .wrap(from_fn(routes::security::body_deadline))
                .wrap(from_fn(routes::security::headers))
                .wrap(TracingLogger::<RequestSpan>::new())
                .wrap(from_fn(observe))
                .app_data(data.clone())
                .app_data(trusted_proxies.clone())
                .service(actix_files::Files::new("/static", static_dir()))
                .configure(move |cfg| routes::configure(cfg, &cookies));
            match sim.clone() {
                Some(sim) => {
                    app.service(web::scope("/sandbox").configure(move |cfg| sim.configure(cfg)))
                }
                None => app,
            }
        })
        // A client has 5 s to send its request head (a body has FISSION_BODY_TIMEOUT_SECS).
        .client_request_timeout(Duration::from_secs(5))
        .listen(listener)?
        .shutdown_timeout(30)
        .run();

        let (shutdown, shutdown_rx) = watch::channel(false);
        let mut workers = if run_workers {
            jobs::spawn(state.clone(), shutdown_rx.clone())
        } else {
            Vec::new()
        };
        // Every instance makes WeChat calls, so every instance reports them.
        workers.push(tokio::spawn(jobs::wechat_calls::run(
            state.clone(),
            shutdown_rx,
        )));
        tracing::info!(address = %addr, public_url = %public_url, "listening");
        Ok(Application {
            port: addr.port(),
            server,
            state,
            simulator,
            shutdown,
            workers,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// The built-in simulator, in sandbox mode.
    pub fn simulator(&self) -> Option<&Simulator> {
        self.simulator.as_ref()
    }

    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// Serves until SIGINT/SIGTERM (or `handle().stop()`): in-flight requests finish, then the
    /// workers finish the job in hand and stop.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let result = self.server.await;
        let _ = self.shutdown.send(true);
        for worker in self.workers {
            if tokio::time::timeout(Duration::from_secs(10), worker)
                .await
                .is_err()
            {
                tracing::warn!("a background worker did not stop within 10 s");
            }
        }
        result
    }
}

/// Connects everything the service needs (creating and migrating the database) and returns
/// the shared state; used by `serve` and by the CLI commands.
pub async fn connect(settings: Settings, public_url: &str) -> anyhow::Result<AppState> {
    let pool = db::connect(
        &settings.database_url,
        settings.database_max_connections,
        db::Planning::Fresh,
    )
    .await?;
    db::migrate(&pool).await?;
    // The push writers' own connections: one each, so pages and jobs never keep a batch
    // waiting for a connection, and planned once (see `db::Planning::Kept`).
    let writers_pool = db::connect(
        &settings.database_url,
        settings.push_writers as u32,
        db::Planning::Kept,
    )
    .await?;
    let store = match &settings.redis_url {
        Some(url) => SharedStore::redis(url.expose_secret(), &settings.redis_prefix).await?,
        None => {
            tracing::warn!(
                "REDIS_URL is not set: caches are in-process, so run a single instance only"
            );
            SharedStore::memory()
        }
    };
    let metrics = Metrics::new();
    let wechat = WechatClient::new(settings.wechat.clone(), store.clone(), metrics.clone())?;
    let storage = Storage::from_url(&settings.storage)?;
    let crypto = match &settings.wechat.encoding_aes_key {
        Some(key) => Some(
            MessageCrypto::new(
                key.expose_secret(),
                settings.wechat.token.expose_secret(),
                &settings.wechat.appid,
            )
            .context("WECHAT_ENCODING_AES_KEY is not a valid key")?,
        ),
        None => None,
    };
    let outbox_wake = Arc::new(Notify::new());
    let pushes = PushQueue::start(
        writers_pool,
        BatchLimits {
            max: settings.push_batch_max,
            wait: Duration::from_millis(settings.push_batch_wait_ms),
            writers: settings.push_writers,
            notice_delay: Duration::from_millis(settings.notice_delay_ms),
        },
        outbox_wake.clone(),
        metrics.clone(),
    );
    Ok(AppState {
        services: Services {
            pool,
            store,
            wechat,
            storage,
            settings: Arc::new(settings),
            public_url: public_url.into(),
            outbox_wake,
            metrics,
            turns: Default::default(),
        },
        crypto,
        pushes,
    })
}

/// The cookie key: `FISSION_SESSION_KEY` (shared by every instance), or a random one per start
/// (sessions then end with the process, and do not cross instances).
fn session_key(settings: &Settings) -> Key {
    match &settings.session_key {
        Some(key) => Key::derive_from(key.expose_secret().as_bytes()),
        None => {
            tracing::warn!(
                "FISSION_SESSION_KEY is not set: sessions use a random key and end at restart"
            );
            Key::generate()
        }
    }
}

/// `static/` next to the working directory (the Docker image's /app), else the crate's own.
fn static_dir() -> std::path::PathBuf {
    let local = std::path::PathBuf::from("static");
    if local.is_dir() {
        local
    } else {
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("static")
    }
}

fn local_base(addr: SocketAddr) -> String {
    let host = match addr {
        SocketAddr::V4(a) if a.ip().is_unspecified() => "127.0.0.1".to_string(),
        SocketAddr::V4(a) => a.ip().to_string(),
        SocketAddr::V6(a) if a.ip().is_unspecified() => "[::1]".to_string(),
        SocketAddr::V6(a) => format!("[{}]", a.ip()),
    };
    format!("http://{host}:{}", addr.port())
}

/// Points the WeChat client at the built-in simulator: API calls go to it over loopback,
/// pages a phone opens (OAuth, scan links) go through the public URL.
fn sandbox(settings: &mut Settings, local_base: &str, public_url: &str) -> Simulator {
    tracing::warn!("SANDBOX MODE: no WECHAT_APPID is set, so a built-in WeChat simulator stands in for WeChat at /sandbox/");
    // The simulator hands out avatars on this server itself, which may well be on loopback.
    let own_host = public_url
        .split_once("://")
        .map_or(public_url, |(_, rest)| rest)
        .split('/')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    settings.avatar_hosts.push(own_host);
    settings.avatar_allow_private = true;
    let account_name = settings
        .account_name
        .get_or_insert_with(|| "Fission 测试号".to_string())
        .clone();
    let wechat = &mut settings.wechat;
    for (base, default) in [
        (&mut wechat.api_base, format!("{local_base}/sandbox")),
        (&mut wechat.mp_base, format!("{local_base}/sandbox")),
        (&mut wechat.open_base, format!("{public_url}/sandbox")),
    ] {
        if base.is_empty() {
            *base = default;
        }
    }
    Simulator::new(SimConfig {
        appid: wechat.appid.clone(),
        secret: wechat.secret.expose_secret().to_string(),
        token: wechat.token.expose_secret().to_string(),
        encoding_aes_key: wechat
            .encoding_aes_key
            .as_ref()
            .map(|k| k.expose_secret().to_string()),
        callback_url: Some(format!("{local_base}/wechat/callback")),
        public_base: format!("{public_url}/sandbox"),
        permanent_quota: 100_000,
        account_name,
        ..SimConfig::default()
    })
}

/// Request latency by method, route template (never the raw path) and status.
async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let metrics = req
        .app_data::<web::Data<AppState>>()
        .map(|s| s.metrics.clone());
    let method = req.method().to_string();
    let response = next.call(req).await?;
    if let Some(metrics) = metrics {
        let route = response
            .request()
            .match_pattern()
            .unwrap_or_else(|| "unmatched".to_string());
        metrics
            .http_latency
            .with_label_values(&[&method, &route, response.status().as_str()])
            .observe(started.elapsed().as_secs_f64());
    }
    Ok(response)
}
