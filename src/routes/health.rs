//! Liveness, readiness and metrics for load balancers and Prometheus.

use actix_web::{web, HttpResponse};

use crate::state::AppState;

pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain").body("ok")
}

pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let database = sqlx::query_scalar::<_, i32>("SELECT 1")
        .fetch_one(&state.pool)
        .await;
    let redis = state.store.ping().await;
    match (database, redis) {
        (Ok(_), Ok(())) => HttpResponse::Ok().json(serde_json::json!({ "status": "ready" })),
        (db, redis) => {
            tracing::warn!(database = ?db.err(), redis = ?redis.err(), "not ready");
            HttpResponse::ServiceUnavailable().json(serde_json::json!({ "status": "unavailable" }))
        }
    }
}

pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(state.metrics.render())
}
