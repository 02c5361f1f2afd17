//! Thin HTTP handlers: parse the request into domain values, call `push` / `referral` / `wechat`,
//! shape the answer. The route table is `configure`.

pub mod admin;
pub mod api;
pub mod callback;
pub mod health;
pub mod hooks_api;
pub mod invite;
pub mod layout;
pub mod media;
pub mod security;
pub mod sessions;

use actix_web::web;
use chrono::Utc;
use sqlx::PgPool;

use crate::db;
use crate::db::campaigns::Campaign;
use crate::error::AppError;

pub fn configure(cfg: &mut web::ServiceConfig, cookies: &sessions::Cookies) {
    cfg.route("/healthz", web::get().to(health::healthz))
        .route("/readyz", web::get().to(health::readyz))
        .route("/metrics", web::get().to(health::metrics))
        .service(
            web::resource("/wechat/callback")
                .route(web::get().to(callback::verify_url))
                .route(web::post().to(callback::receive)),
        )
        .configure(|cfg| invite::configure(cfg, cookies.follower()))
        .route("/media/{key:.+}", web::get().to(media::serve))
        .configure(|cfg| admin::configure(cfg, cookies.operator()))
        .service(
            web::scope("/api/v1")
                .wrap(actix_web::middleware::from_fn(api::require_bearer))
                .configure(api::configure),
        );
}

/// The campaign a request names (`?campaign=ID`), or the one running now when it names none;
/// 404 when there is no such campaign.
pub(crate) async fn campaign_or_active(
    pool: &PgPool,
    id: Option<i64>,
) -> Result<Campaign, AppError> {
    let found = match id {
        Some(id) => db::campaigns::get(pool, id).await?,
        None => db::campaigns::active_at(pool, Utc::now()).await?,
    };
    found.ok_or_else(|| AppError::NotFound("no such campaign".into()))
}
