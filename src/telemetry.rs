//! Logs (tracing, text or JSON) and Prometheus metrics. Each `Application` owns its own
//! registry, so several instances can run in one test process without sharing counters.

use std::net::IpAddr;
use std::sync::Arc;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::{web, HttpMessage, HttpRequest};
use tracing::Span;
use tracing_actix_web::{RequestId, RootSpanBuilder};

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, Opts, Registry,
    TextEncoder,
};
use tracing_subscriber::EnvFilter;

use crate::config::{LogFormat, TrustedProxies};

/// Installs the global subscriber once; later calls (tests start many apps) are no-ops.
pub fn init(filter: &str, format: LogFormat) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// The address a request came from: the connection's peer, or the client a trusted proxy names
/// (`FISSION_TRUSTED_PROXIES`, registered as app data by startup). Never a header alone.
pub fn client_ip(req: &HttpRequest) -> Option<IpAddr> {
    let peer = req.peer_addr().map(|a| a.ip());
    let forwarded = req
        .headers()
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok());
    match req.app_data::<web::Data<TrustedProxies>>() {
        Some(proxies) => proxies.client(peer, forwarded),
        None => peer,
    }
}

/// Each request's span: method, route template, path (without the query string, which may
/// carry an OAuth code), status, the client address from `client_ip`, and an error's message
/// (a 500's cause chain is logged where it is answered, see `error.rs`).
pub struct RequestSpan;

impl RootSpanBuilder for RequestSpan {
    fn on_request_start(request: &ServiceRequest) -> Span {
        let route = request
            .match_pattern()
            .unwrap_or_else(|| "default".to_string());
        let client = client_ip(request.request()).map_or_else(String::new, |ip| ip.to_string());
        let request_id = request
            .extensions()
            .get::<RequestId>()
            .map_or_else(String::new, ToString::to_string);
        tracing::info_span!(
            "HTTP request",
            http.method = %request.method(),
            http.route = %route,
            http.target = %request.path(),
            http.client_ip = %client,
            http.status_code = tracing::field::Empty,
            request_id = %request_id,
            exception.message = tracing::field::Empty,
        )
    }

    fn on_request_end<B: MessageBody>(
        span: Span,
        outcome: &Result<ServiceResponse<B>, actix_web::Error>,
    ) {
        let (status, error) = match outcome {
            Ok(response) => (
                response.status(),
                response.response().error().map(ToString::to_string),
            ),
            Err(e) => (e.as_response_error().status_code(), Some(e.to_string())),
        };
        span.record("http.status_code", status.as_u16());
        if let Some(message) = error {
            span.record("exception.message", message);
        }
    }
}

#[derive(Clone)]
pub struct Metrics(Arc<Inner>);

pub struct Inner {
    registry: Registry,
    /// Pushes by outcome: received and rejected, then each `push::Outcome`.
    pub events: IntCounterVec,
    /// Pushes written per group-commit transaction.
    pub push_batch: Histogram,
    pub wechat_calls: IntCounterVec,
    pub token_refreshes: IntCounter,
    pub http_latency: HistogramVec,
    pub outbox: IntCounterVec,
    /// Dashboard passwords verified (argon2 runs), wrong or right.
    pub password_checks: IntCounter,
    /// Posters drawn (a poster already in storage is not drawn again).
    pub poster_renders: IntCounter,
}

impl std::ops::Deref for Metrics {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let registry = Registry::new();
        let events = IntCounterVec::new(
            Opts::new("fission_events_total", "WeChat pushes by outcome"),
            &["outcome"],
        )
        .expect("static metric definition");
        let wechat_calls = IntCounterVec::new(
            Opts::new(
                "fission_wechat_api_calls_total",
                "WeChat API calls by api and errcode",
            ),
            &["api", "errcode"],
        )
        .expect("static metric definition");
        let token_refreshes = IntCounter::new(
            "fission_token_refreshes_total",
            "access_token fetches from WeChat",
        )
        .expect("static metric definition");
        let http_latency = HistogramVec::new(
            HistogramOpts::new(
                "fission_http_request_duration_seconds",
                "HTTP request latency by route",
            )
            .buckets(vec![
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
            ]),
            &["method", "route", "status"],
        )
        .expect("static metric definition");
        let outbox = IntCounterVec::new(
            Opts::new(
                "fission_outbox_jobs_total",
                "outbox jobs by kind and result",
            ),
            &["kind", "result"],
        )
        .expect("static metric definition");
        let push_batch = Histogram::with_opts(
            HistogramOpts::new(
                "fission_push_batch_size",
                "pushes written per group-commit transaction",
            )
            .buckets(vec![1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0]),
        )
        .expect("static metric definition");
        let password_checks = IntCounter::new(
            "fission_password_checks_total",
            "dashboard passwords verified",
        )
        .expect("static metric definition");
        let poster_renders = IntCounter::new("fission_poster_renders_total", "posters drawn")
            .expect("static metric definition");
        for collector in [
            Box::new(events.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(push_batch.clone()),
            Box::new(wechat_calls.clone()),
            Box::new(token_refreshes.clone()),
            Box::new(http_latency.clone()),
            Box::new(outbox.clone()),
            Box::new(password_checks.clone()),
            Box::new(poster_renders.clone()),
        ] {
            registry
                .register(collector)
                .expect("metric names are unique");
        }
        Metrics(Arc::new(Inner {
            registry,
            events,
            push_batch,
            wechat_calls,
            token_refreshes,
            http_latency,
            outbox,
            password_checks,
            poster_renders,
        }))
    }

    pub fn event(&self, outcome: &str) {
        self.events.with_label_values(&[outcome]).inc();
    }

    pub fn wechat_call(&self, api: &str, errcode: i64) {
        self.wechat_calls
            .with_label_values(&[api, &errcode.to_string()])
            .inc();
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut buffer = Vec::new();
        // Encoding into a Vec only fails on invalid metric names, which are static here.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buffer);
        String::from_utf8(buffer).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}
