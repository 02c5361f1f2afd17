//! Thin HTTP handlers: parse the request into domain values, call `referral` / `wechat`,
//! shape the answer. The route table is `configure`.

pub mod admin;
pub mod api;
pub mod callback;
pub mod export;
pub mod health;
pub mod invite;
pub mod layout;
pub mod media;

use actix_web::web;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(health::healthz))
        .route("/readyz", web::get().to(health::readyz))
        .route("/metrics", web::get().to(health::metrics))
        .service(
            web::resource("/wechat/callback")
                .route(web::get().to(callback::verify_url))
                .route(web::post().to(callback::receive)),
        )
        .configure(invite::configure)
        .route("/media/{key:.+}", web::get().to(media::serve))
        .configure(admin::configure)
        .service(
            web::scope("/api/v1")
                .wrap(actix_web::middleware::from_fn(api::require_bearer))
                .configure(api::configure),
        );
}
