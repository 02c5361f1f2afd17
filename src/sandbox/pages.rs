//! The pages a person uses in sandbox mode (phone-first, Chinese UI, a banner on each): the
//! index, the "follow this account" page a scanned QR code opens and the result of a push.
//! (The users and their inboxes are in `people.rs`.) Every action goes through the same
//! `Simulator` methods tests use.

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use chrono::DateTime;
use serde::Deserialize;

use super::push::{xml_fields, PushOutcome, SimError};
use super::state::{random_openid, Scene};
use super::{encode_component, Simulator};

pub(super) fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(index))
        .route("", web::get().to(add_slash))
        .service(
            web::resource("/scan")
                .route(web::get().to(scan_page))
                .route(web::post().to(scan_submit)),
        )
        .route("/assets/{name}", web::get().to(asset));
}

/// The pages' scripts, served by the simulator itself (it is mounted without Fission's
/// `/static` in tests), as files: the pages carry no inline script.
async fn asset(name: web::Path<String>) -> HttpResponse {
    let script = match name.as_str() {
        "scan.js" => include_str!("../../static/sandbox/scan.js"),
        "inbox.js" => include_str!("../../static/sandbox/inbox.js"),
        _ => return HttpResponse::NotFound().finish(),
    };
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "max-age=300"))
        .body(script)
}

pub(super) fn render(page: &impl Template, status: u16) -> HttpResponse {
    match page.render() {
        Ok(html) => HttpResponse::build(StatusCode::from_u16(status).unwrap_or(StatusCode::OK))
            .content_type("text/html; charset=utf-8")
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .body(html),
        Err(e) => {
            tracing::error!(error = %e, "sandbox: cannot render page");
            HttpResponse::InternalServerError().finish()
        }
    }
}

#[derive(Template)]
#[template(path = "sandbox/error.html")]
struct ErrorPage<'a> {
    title: &'a str,
    base: String,
    message: &'a str,
}

pub(super) fn error_page(sim: &Simulator, status: u16, title: &str, message: &str) -> HttpResponse {
    let page = ErrorPage {
        title,
        base: sim.link(""),
        message,
    };
    render(&page, status)
}

pub(super) fn see_other(location: String) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location))
        .finish()
}

/// China time, as the people using these pages read it.
pub(super) fn local_time(unix: i64) -> String {
    DateTime::from_timestamp(unix, 0)
        .map(|t| {
            t.with_timezone(&crate::domain::time::china())
                .format("%Y-%m-%d %H:%M:%S")
                .to_string()
        })
        .unwrap_or_default()
}

#[derive(Template)]
#[template(path = "sandbox/index.html")]
struct IndexPage {
    title: &'static str,
    base: String,
    account_name: String,
    appid: String,
    account_id: String,
    callback: String,
    safe_mode: bool,
    user_count: usize,
    follower_count: usize,
    ticket_count: usize,
}

async fn index(sim: web::Data<Simulator>) -> HttpResponse {
    let cfg = sim.config();
    let (user_count, follower_count, ticket_count) = {
        let st = sim.state();
        let followers = st.users.values().filter(|u| u.following).count();
        (st.users.len(), followers, st.tickets.len())
    };
    let page = IndexPage {
        title: "沙箱首页",
        base: sim.link(""),
        account_name: cfg.account_name.clone(),
        appid: cfg.appid.clone(),
        account_id: sim.account_id().to_owned(),
        callback: cfg
            .callback_url
            .clone()
            .unwrap_or_else(|| "（未配置）".into()),
        safe_mode: cfg.encoding_aes_key.is_some(),
        user_count,
        follower_count,
        ticket_count,
    };
    render(&page, 200)
}

/// `/sandbox` without the slash: relative links need the slash, so send the browser there.
async fn add_slash(req: HttpRequest) -> HttpResponse {
    see_other(format!("{}/", req.path().trim_end_matches('/')))
}

struct UserOption {
    openid: String,
    nickname: String,
    following: bool,
}

#[derive(Template)]
#[template(path = "sandbox/scan.html")]
struct ScanPage {
    title: &'static str,
    base: String,
    account_name: String,
    code_kind: &'static str,
    scene: String,
    expires: Option<String>,
    ticket: String,
    users: Vec<UserOption>,
    /// The option selected at first: a user who does not follow yet (a scan usually means a
    /// new follower), or "" for "new user".
    preselect: String,
}

#[derive(Deserialize)]
struct TicketQuery {
    ticket: Option<String>,
}

async fn scan_page(sim: web::Data<Simulator>, q: web::Query<TicketQuery>) -> HttpResponse {
    let ticket = q.ticket.clone().unwrap_or_default();
    let found = {
        let st = sim.state();
        st.live_ticket(&ticket).map(|t| {
            let scene = match &t.scene {
                Scene::Id(id) => format!("scene_id={id}"),
                Scene::Str(s) => format!("scene_str={s}"),
            };
            (t.permanent, scene, t.expires_at)
        })
    };
    let Some((permanent, scene, expires_at)) = found else {
        return error_page(
            &sim,
            404,
            "二维码已过期或不存在",
            "这个二维码无效：票据不存在或已过期。请让对方重新生成邀请码。",
        );
    };
    let users: Vec<UserOption> = sim
        .users()
        .into_iter()
        .map(|u| UserOption {
            openid: u.openid,
            nickname: u.nickname,
            following: u.following,
        })
        .collect();
    let preselect = users
        .iter()
        .find(|u| !u.following)
        .map(|u| u.openid.clone())
        .unwrap_or_default();
    let page = ScanPage {
        preselect,
        title: "关注公众号",
        base: sim.link(""),
        account_name: sim.config().account_name.clone(),
        code_kind: if permanent {
            "永久二维码"
        } else {
            "临时二维码"
        },
        scene,
        expires: expires_at.map(local_time),
        ticket,
        users,
    };
    render(&page, 200)
}

#[derive(Deserialize)]
struct ScanForm {
    ticket: String,
    #[serde(default)]
    openid: String,
    #[serde(default)]
    nickname: String,
}

async fn scan_submit(sim: web::Data<Simulator>, form: web::Form<ScanForm>) -> HttpResponse {
    let openid = if form.openid.is_empty() {
        let nickname = match form.nickname.trim() {
            "" => format!("测试用户{}", sim.users().len() + 1),
            given => given.to_owned(),
        };
        let openid = random_openid();
        sim.add_user(&openid, &nickname, false);
        openid
    } else {
        form.openid.clone()
    };
    let result = sim.follow(&openid, Some(&form.ticket)).await;
    result_page(&sim, &openid, result)
}

#[derive(Template)]
#[template(path = "sandbox/result.html")]
struct ResultPage {
    title: &'static str,
    base: String,
    headline: &'static str,
    event: String,
    nickname: String,
    openid: String,
    openid_path: String,
    status: u16,
    reply: Option<String>,
    reply_error: Option<String>,
}

pub(super) fn result_page(
    sim: &Simulator,
    openid: &str,
    result: Result<PushOutcome, SimError>,
) -> HttpResponse {
    let outcome = match result {
        Ok(outcome) => outcome,
        Err(SimError::UnknownTicket) => {
            return error_page(
                sim,
                404,
                "二维码已过期或不存在",
                "这个二维码无效：票据不存在或已过期。",
            )
        }
        Err(
            e @ (SimError::UnknownUser(_)
            | SimError::AlreadyFollowing(_)
            | SimError::NotFollowing(_)
            | SimError::UnknownTemplate),
        ) => return error_page(sim, 409, "无法执行", &e.to_string()),
        Err(e) => return error_page(sim, 502, "推送失败", &e.to_string()),
    };
    let event = xml_fields(&outcome.push_xml)
        .ok()
        .and_then(|f| f.get("Event").cloned())
        .unwrap_or_default();
    let headline = match (event.as_str(), outcome.status) {
        (_, s) if s != 200 => "推送失败",
        ("subscribe", _) => "已关注公众号",
        ("SCAN", _) => "已再次扫码",
        ("unsubscribe", _) => "已取消关注",
        ("subscribe_msg_popup_event", _) => "已回应订阅通知",
        _ => "已推送",
    };
    let reply = outcome.reply_xml.as_deref().and_then(|xml| {
        let fields = xml_fields(xml).ok()?;
        Some(match fields.get("MsgType").map(String::as_str) {
            Some("text") => fields.get("Content").cloned().unwrap_or_default(),
            Some("image") => "[图片]".to_owned(),
            other => format!("[{} 消息]", other.unwrap_or("?")),
        })
    });
    let nickname = sim
        .state()
        .users
        .get(openid)
        .map(|u| u.nickname.clone())
        .unwrap_or_default();
    let page = ResultPage {
        title: headline,
        base: sim.link(""),
        headline,
        event,
        nickname,
        openid: openid.to_owned(),
        openid_path: encode_component(openid),
        status: outcome.status,
        reply,
        reply_error: outcome.reply_error,
    };
    render(&page, 200)
}
