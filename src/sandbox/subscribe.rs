//! The subscription prompt a phone shows when an H5 page's `wx-open-subscribe` button is
//! pressed: in sandbox mode the invite page links here. Allowing records one acceptance per
//! template and pushes `subscribe_msg_popup_event` to the callback, as WeChat does; then the
//! follower is sent back to the page they came from.

use actix_web::{web, HttpResponse};
use askama::Template;
use serde::Deserialize;

use super::pages::{error_page, render, result_page, see_other};
use super::{Simulator, TemplateKind};

pub(super) fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/subscribe")
            .route(web::get().to(prompt))
            .route(web::post().to(answer)),
    );
}

#[derive(Deserialize)]
struct Asked {
    openid: String,
    /// Comma-separated template ids, as the open tag's `template` attribute.
    templates: String,
    /// Where to go afterwards: a path on the service ("/invite").
    #[serde(default)]
    back: String,
    #[serde(default)]
    answer: String,
}

#[derive(Template)]
#[template(path = "sandbox/subscribe.html")]
struct PromptPage {
    title: &'static str,
    base: String,
    account_name: String,
    openid: String,
    templates: Vec<String>,
    template_ids: String,
    back: String,
}

async fn prompt(sim: web::Data<Simulator>, q: web::Query<Asked>) -> HttpResponse {
    let titles: Option<Vec<String>> = q
        .templates
        .split(',')
        .map(|id| {
            sim.config()
                .templates
                .iter()
                .find(|t| t.id == id.trim() && t.kind == TemplateKind::Subscription)
                .map(|t| t.title.clone())
        })
        .collect();
    let Some(titles) = titles else {
        return error_page(&sim, 404, "无法订阅", "公众号没有这个订阅通知模板。");
    };
    let page = PromptPage {
        title: "订阅通知",
        base: sim.link(""),
        account_name: sim.config().account_name.clone(),
        openid: q.openid.clone(),
        templates: titles,
        template_ids: q.templates.clone(),
        back: safe_back(&q.back),
    };
    render(&page, 200)
}

async fn answer(sim: web::Data<Simulator>, form: web::Form<Asked>) -> HttpResponse {
    let templates: Vec<&str> = form.templates.split(',').map(str::trim).collect();
    let accept = form.answer == "accept";
    let result = sim
        .answer_subscription(&form.openid, &templates, accept)
        .await;
    let back = safe_back(&form.back);
    match result {
        Ok(outcome) if outcome.status == 200 && !back.is_empty() => see_other(back),
        other => result_page(&sim, &form.openid, other),
    }
}

/// Only a path on the same host: the prompt must not become an open redirect.
fn safe_back(back: &str) -> String {
    let ok = back.starts_with('/') && !back.starts_with("//") && !back.contains('\\');
    if ok {
        back.to_owned()
    } else {
        String::new()
    }
}
