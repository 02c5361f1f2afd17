//! The user and message APIs: `user/info`, `user/get`, `message/custom/send`,
//! `message/template/send`; plus what every `/cgi-bin` route shares (query params, wrong method).

use std::collections::HashMap;
use std::ops::Bound;

use actix_web::{web, HttpResponse, ResponseError};
use rand::Rng;
use serde_json::{json, Value};

use super::state::{InboxBody, Via, WxError};
use super::Simulator;
use super::{SimTemplate, TemplateKind};
use crate::wechat::allowance::OUT_OF_TIME;

/// Query parameters as a map, so a missing one becomes WeChat's errcode, not actix's 400.
pub(super) type Params = web::Query<HashMap<String, String>>;

/// `user/get` pages hold this many openids, like WeChat's.
pub(super) const USERS_PER_PAGE: usize = 10_000;

pub(super) async fn require_get() -> HttpResponse {
    WxError::new(43001).error_response()
}

pub(super) async fn require_post() -> HttpResponse {
    WxError::new(43002).error_response()
}

pub(super) fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/cgi-bin/user/info")
            .route(web::get().to(user_info))
            .default_service(web::to(require_get)),
    )
    .service(
        web::resource("/cgi-bin/user/get")
            .route(web::get().to(user_get))
            .default_service(web::to(require_get)),
    );
    cfg.service(
        web::resource("/cgi-bin/message/custom/send")
            .route(web::post().to(custom_send))
            .default_service(web::to(require_post)),
    )
    .service(
        web::resource("/cgi-bin/message/template/send")
            .route(web::post().to(template_send))
            .default_service(web::to(require_post)),
    )
    .service(
        web::resource("/cgi-bin/ticket/getticket")
            .route(web::get().to(get_ticket))
            .default_service(web::to(require_get)),
    )
    .service(
        web::resource("/cgi-bin/message/subscribe/bizsend")
            .route(web::post().to(subscribe_send))
            .default_service(web::to(require_post)),
    );
}

fn token(q: &Params) -> Option<&str> {
    q.get("access_token").map(String::as_str)
}

fn ok() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "errcode": 0, "errmsg": "ok" }))
}

async fn user_info(sim: web::Data<Simulator>, q: Params) -> Result<HttpResponse, WxError> {
    sim.gate("user/info", token(&q))?;
    sim.lag().await;
    let openid = q
        .get("openid")
        .filter(|o| !o.is_empty())
        .ok_or(WxError::new(41009))?;
    let st = sim.state();
    let user = st.users.get(openid).ok_or(WxError::new(40003))?;
    if !user.following {
        return Ok(HttpResponse::Ok().json(json!({ "subscribe": 0, "openid": user.openid })));
    }
    // No nickname or headimgurl: WeChat stopped returning them here in December 2021.
    Ok(HttpResponse::Ok().json(json!({
        "subscribe": 1,
        "openid": user.openid,
        "language": "zh_CN",
        "subscribe_time": user.subscribe_time,
        "remark": "",
        "groupid": 0,
        "tagid_list": [],
        "subscribe_scene": user.subscribe_scene,
        "qr_scene": user.qr_scene,
        "qr_scene_str": user.qr_scene_str,
    })))
}

async fn user_get(sim: web::Data<Simulator>, q: Params) -> Result<HttpResponse, WxError> {
    sim.gate("user/get", token(&q))?;
    sim.lag().await;
    let st = sim.state();
    let start = match q.get("next_openid").filter(|o| !o.is_empty()) {
        Some(after) => Bound::Excluded(after.as_str()),
        None => Bound::Unbounded,
    };
    let total = st.users.values().filter(|u| u.following).count();
    let page: Vec<&str> = st
        .users
        .range::<str, _>((start, Bound::Unbounded))
        .filter(|(_, u)| u.following)
        .take(USERS_PER_PAGE)
        .map(|(openid, _)| openid.as_str())
        .collect();
    let reply = match page.last() {
        None => json!({ "total": total, "count": 0, "next_openid": "" }),
        Some(last) => json!({
            "total": total,
            "count": page.len(),
            "data": { "openid": page },
            "next_openid": last,
        }),
    };
    Ok(HttpResponse::Ok().json(reply))
}

async fn custom_send(
    sim: web::Data<Simulator>,
    q: Params,
    body: web::Bytes,
) -> Result<HttpResponse, WxError> {
    sim.gate("message/custom/send", token(&q))?;
    sim.lag().await;
    let body: Value = serde_json::from_slice(&body).map_err(|_| WxError::new(47001))?;
    let touser = body.get("touser").and_then(Value::as_str).unwrap_or("");
    let mut st = sim.state();
    let now = st.now();
    let user = st.users.get(touser).ok_or(WxError::new(40003))?;
    let allowed = if user.following {
        user.allowance.check(now).map_err(|closed| closed.errcode())
    } else {
        Err(OUT_OF_TIME)
    };
    let message = match body.get("msgtype").and_then(Value::as_str) {
        Some("text") => {
            let content = body
                .pointer("/text/content")
                .and_then(Value::as_str)
                .ok_or(WxError::new(40008))?;
            if content.is_empty() {
                return Err(WxError::new(44004));
            }
            InboxBody::Text {
                content: content.to_owned(),
            }
        }
        Some("image") => {
            let media_id = body
                .pointer("/image/media_id")
                .and_then(Value::as_str)
                .ok_or(WxError::new(40008))?;
            st.live_media(media_id).ok_or(WxError::new(40007))?;
            InboxBody::Image {
                media_id: media_id.to_owned(),
            }
        }
        _ => return Err(WxError::new(40008)),
    };
    if let Err(errcode) = allowed {
        return Err(st.refuse(touser, Via::Custom, errcode));
    }
    if let Some(user) = st.users.get_mut(touser) {
        user.allowance.spend();
    }
    st.deliver(touser, Via::Custom, message);
    Ok(ok())
}

/// A category template message: the template must be one of the account's category
/// templates, and `data` must fill exactly its keywords with valid values.
async fn template_send(
    sim: web::Data<Simulator>,
    q: Params,
    body: web::Bytes,
) -> Result<HttpResponse, WxError> {
    sim.gate("message/template/send", token(&q))?;
    sim.lag().await;
    let body: Value = serde_json::from_slice(&body).map_err(|_| WxError::new(47001))?;
    let touser = body.get("touser").and_then(Value::as_str).unwrap_or("");
    let template = find_template(&sim, &body, TemplateKind::Category)?;
    let data = keyword_data(&body, &template)?;
    let url = match body.get("url") {
        None | Some(Value::Null) => None,
        Some(Value::String(u)) => Some(u.clone()),
        Some(_) => return Err(WxError::new(47001)),
    };
    let mut st = sim.state();
    let following = st.users.get(touser).ok_or(WxError::new(40003))?.following;
    if !following {
        return Err(st.refuse(touser, Via::Template, 43004));
    }
    let msgid: i64 = rand::thread_rng().gen_range(1_000_000_000..i64::from(i32::MAX) * 2);
    let message = InboxBody::Template {
        template_id: template.id.clone(),
        url,
        data,
        msgid,
    };
    st.deliver(touser, Via::Template, message);
    Ok(HttpResponse::Ok().json(json!({ "errcode": 0, "errmsg": "ok", "msgid": msgid })))
}

/// JS-SDK's `jsapi_ticket` (type=jsapi; 7200 s). Each call issues a new one, so a service that
/// does not share it across instances shows up in `calls("ticket/getticket")`.
async fn get_ticket(sim: web::Data<Simulator>, q: Params) -> Result<HttpResponse, WxError> {
    sim.gate("ticket/getticket", token(&q))?;
    if q.get("type").map(String::as_str) != Some("jsapi") {
        return Err(WxError::new(40097));
    }
    let ticket = super::state::random_ticket();
    sim.state().jsapi_tickets.push(ticket.clone());
    Ok(HttpResponse::Ok()
        .json(json!({ "errcode": 0, "errmsg": "ok", "ticket": ticket, "expires_in": 7200 })))
}

/// A one-time subscription notice: each needs an acceptance of that template by the user
/// (43101 without one), and is used up by it.
async fn subscribe_send(
    sim: web::Data<Simulator>,
    q: Params,
    body: web::Bytes,
) -> Result<HttpResponse, WxError> {
    sim.gate("message/subscribe/bizsend", token(&q))?;
    let body: Value = serde_json::from_slice(&body).map_err(|_| WxError::new(47001))?;
    let touser = body.get("touser").and_then(Value::as_str).unwrap_or("");
    let template = find_template(&sim, &body, TemplateKind::Subscription)?;
    let data = keyword_data(&body, &template)?;
    let page = match body.get("page") {
        None | Some(Value::Null) => None,
        Some(Value::String(u)) => Some(u.clone()),
        Some(_) => return Err(WxError::new(47001)),
    };
    let mut st = sim.state();
    let user = st.users.get_mut(touser).ok_or(WxError::new(40003))?;
    let accepted = user.following
        && match user.accepted.get_mut(&template.id) {
            Some(n) if *n > 0 => {
                *n -= 1;
                true
            }
            _ => false,
        };
    if !accepted {
        return Err(st.refuse(touser, Via::Subscription, 43101));
    }
    let message = InboxBody::Template {
        template_id: template.id.clone(),
        url: page,
        data,
        msgid: 0,
    };
    st.deliver(touser, Via::Subscription, message);
    Ok(ok())
}

fn find_template(
    sim: &Simulator,
    body: &Value,
    kind: TemplateKind,
) -> Result<SimTemplate, WxError> {
    let id = body
        .get("template_id")
        .and_then(Value::as_str)
        .unwrap_or("");
    sim.config()
        .templates
        .iter()
        .find(|t| t.id == id && t.kind == kind)
        .cloned()
        .ok_or(WxError::new(40037))
}

/// `data` as `{"thing1": {"value": "…"}, …}` with exactly the template's keywords, each value
/// valid for its type (47003 "argument invalid" otherwise).
fn keyword_data(body: &Value, template: &SimTemplate) -> Result<Value, WxError> {
    let fields = body
        .get("data")
        .and_then(Value::as_object)
        .ok_or(WxError::new(47003))?;
    let mut declared: Vec<&str> = template.fields.iter().map(String::as_str).collect();
    let mut given: Vec<&str> = fields.keys().map(String::as_str).collect();
    declared.sort_unstable();
    given.sort_unstable();
    if declared != given {
        return Err(WxError::new(47003));
    }
    for (key, field) in fields {
        let value = field
            .get("value")
            .and_then(Value::as_str)
            .ok_or(WxError::new(47003))?;
        if !valid_keyword_value(key, value) {
            return Err(WxError::new(47003));
        }
    }
    Ok(Value::Object(fields.clone()))
}

/// WeChat's rules for keyword values by type (the name without its number).
fn valid_keyword_value(key: &str, value: &str) -> bool {
    let kind = key.trim_end_matches(|c: char| c.is_ascii_digit());
    let chars = value.chars().count();
    if chars == 0 {
        return false;
    }
    match kind {
        "thing" => chars <= 20,
        "phrase" => chars <= 5 && value.chars().all(|c| !c.is_ascii_digit()),
        "name" => chars <= 10,
        "number" => {
            chars <= 32
                && value.chars().all(|c| c.is_ascii_digit() || c == '.')
                && value.chars().any(|c| c.is_ascii_digit())
        }
        "character_string" => chars <= 32 && value.is_ascii(),
        "time" | "date" => {
            chars <= 32
                && value
                    .chars()
                    .all(|c| c.is_ascii_digit() || " -:/年月日时分".contains(c))
        }
        "amount" => chars <= 32 && value.chars().any(|c| c.is_ascii_digit()),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::spawn;
    use super::super::InboxBody;
    use super::*;

    #[actix_web::test]
    async fn user_info_reports_follow_state_without_nickname() {
        let t = spawn().await;
        t.sim.add_user("oA", "阿甲", true);
        t.sim.add_user("oB", "阿乙", false);
        let token = t.access_token().await;
        let info =
            |o: &str| format!("/cgi-bin/user/info?access_token={token}&openid={o}&lang=zh_CN");
        let a = t.get_json(&info("oA")).await;
        assert_eq!(a["subscribe"], 1);
        assert_eq!(a["subscribe_scene"], "ADD_SCENE_OTHERS");
        assert!(a.get("nickname").is_none() && a.get("headimgurl").is_none());
        assert_eq!(
            t.get_json(&info("oB")).await,
            json!({"subscribe": 0, "openid": "oB"})
        );
        assert_eq!(t.get_json(&info("oZ")).await["errcode"], 40003);
        assert_eq!(t.sim.calls("user/info"), 3);
    }

    #[actix_web::test]
    async fn user_get_pages_through_followers() {
        let t = spawn().await;
        for i in 0..USERS_PER_PAGE + 2 {
            t.sim.add_user(&format!("o{i:06}"), "x", i != 3);
        }
        let token = t.access_token().await;
        let page1 = t
            .get_json(&format!("/cgi-bin/user/get?access_token={token}"))
            .await;
        assert_eq!(page1["total"], USERS_PER_PAGE + 1);
        assert_eq!(page1["count"], USERS_PER_PAGE);
        let next = page1["next_openid"].as_str().unwrap();
        let page2 = t
            .get_json(&format!(
                "/cgi-bin/user/get?access_token={token}&next_openid={next}"
            ))
            .await;
        assert_eq!(page2["count"], 1);
        let last = page2["next_openid"].as_str().unwrap();
        let page3 = t
            .get_json(&format!(
                "/cgi-bin/user/get?access_token={token}&next_openid={last}"
            ))
            .await;
        assert_eq!(
            page3,
            json!({"total": USERS_PER_PAGE + 1, "count": 0, "next_openid": ""})
        );
    }

    #[actix_web::test]
    async fn custom_send_follows_the_2023_allowances() {
        let t = spawn().await;
        // Added as following: a follow just now opens 3 messages within a minute.
        t.sim.add_user("oA", "阿甲", true);
        t.sim.add_user("oB", "阿乙", false);
        let token = t.access_token().await;
        let uri = format!("/cgi-bin/message/custom/send?access_token={token}");
        let text = |to: &str| json!({"touser": to, "msgtype": "text", "text": {"content": "你好"}});
        assert_eq!(t.post_json(&uri, &text("oB")).await["errcode"], 45015);
        assert_eq!(t.post_json(&uri, &text("oZ")).await["errcode"], 40003);
        let no_content = json!({"touser": "oA", "msgtype": "text", "text": {}});
        assert_eq!(t.post_json(&uri, &no_content).await["errcode"], 40008);
        let bad_type = json!({"touser": "oA", "msgtype": "voice", "voice": {"media_id": "x"}});
        assert_eq!(t.post_json(&uri, &bad_type).await["errcode"], 40008);
        let bad_media = json!({"touser": "oA", "msgtype": "image", "image": {"media_id": "nope"}});
        assert_eq!(t.post_json(&uri, &bad_media).await["errcode"], 40007);
        for _ in 0..3 {
            assert_eq!(t.post_json(&uri, &text("oA")).await["errcode"], 0);
        }
        assert_eq!(t.post_json(&uri, &text("oA")).await["errcode"], 45047);
        assert_eq!(t.sim.inbox("oA").len(), 3);

        // A minute later the follow's allowance is over, spent or not.
        t.sim.add_user("oC", "阿丙", true);
        t.sim.advance_clock(61);
        let token = t.access_token().await;
        let uri = format!("/cgi-bin/message/custom/send?access_token={token}");
        assert_eq!(t.post_json(&uri, &text("oC")).await["errcode"], 45015);
        assert_eq!(
            t.sim.inbox("oA")[0].body,
            InboxBody::Text {
                content: "你好".into()
            }
        );
    }

    #[actix_web::test]
    async fn template_send_needs_a_declared_template_filled_exactly() {
        let t = spawn().await;
        t.sim.add_user("oA", "阿甲", true);
        t.sim.add_user("oB", "阿乙", false);
        let token = t.access_token().await;
        let uri = format!("/cgi-bin/message/template/send?access_token={token}");
        let msg = |to: &str, tpl: &str, data: Value| json!({"touser": to, "template_id": tpl, "url": "https://example.com/x", "data": data});
        let good = json!({"thing1": {"value": "小红等 3 位好友"}, "number2": {"value": "12"},
                          "thing3": {"value": "再邀请 3 位得贴纸"}});
        let sent = t
            .post_json(&uri, &msg("oA", "tpl_invite_progress", good.clone()))
            .await;
        assert_eq!(sent["errcode"], 0);
        assert!(sent["msgid"].is_i64());
        // Not the account's, or a subscription template: 40037.
        for tpl in ["tpl_reward", "sub_invite_progress"] {
            assert_eq!(
                t.post_json(&uri, &msg("oA", tpl, good.clone())).await["errcode"],
                40037
            );
        }
        assert_eq!(
            t.post_json(&uri, &msg("oB", "tpl_invite_progress", good.clone()))
                .await["errcode"],
            43004
        );
        // The old first/remark shape, a missing keyword, a thing over 20 characters, a
        // number that is not one: 47003.
        let bad = [
            json!({"first": {"value": "恭喜"}, "thing1": {"value": "x"}, "number2": {"value": "1"}, "thing3": {"value": "x"}}),
            json!({"thing1": {"value": "x"}, "number2": {"value": "1"}}),
            json!({"thing1": {"value": "一二三四五六七八九十一二三四五六七八九十一"}, "number2": {"value": "1"}, "thing3": {"value": "x"}}),
            json!({"thing1": {"value": "x"}, "number2": {"value": "十二"}, "thing3": {"value": "x"}}),
        ];
        for data in bad {
            assert_eq!(
                t.post_json(&uri, &msg("oA", "tpl_invite_progress", data.clone()))
                    .await["errcode"],
                47003,
                "{data}"
            );
        }
        assert_eq!(t.sim.inbox("oA").len(), 1);
        assert_eq!(t.sim.inbox("oA")[0].via, Via::Template);
    }

    #[actix_web::test]
    async fn bizsend_spends_one_acceptance() {
        let t = spawn().await;
        t.sim.add_user("oA", "阿甲", true);
        let token = t.access_token().await;
        let uri = format!("/cgi-bin/message/subscribe/bizsend?access_token={token}");
        let data = json!({"thing1": {"value": "小红"}, "number2": {"value": "3"}, "thing3": {"value": "继续加油"}});
        let notice = json!({"touser": "oA", "template_id": "sub_invite_progress", "page": "https://x/invite", "data": data});
        assert_eq!(t.post_json(&uri, &notice).await["errcode"], 43101);
        // Accepting records the acceptance even though no callback takes the push here.
        let _ = t
            .sim
            .answer_subscription("oA", &["sub_invite_progress"], true)
            .await;
        assert_eq!(t.post_json(&uri, &notice).await["errcode"], 0);
        assert_eq!(t.post_json(&uri, &notice).await["errcode"], 43101);
        let category = json!({"touser": "oA", "template_id": "tpl_invite_progress", "data": data});
        assert_eq!(t.post_json(&uri, &category).await["errcode"], 40037);
        let inbox = t.sim.inbox("oA");
        assert_eq!(inbox.len(), 1);
        assert_eq!(inbox[0].via, Via::Subscription);
    }

    #[actix_web::test]
    async fn injected_fault_after_token_check() {
        let t = spawn().await;
        t.sim.add_user("oA", "阿甲", true);
        t.sim.fail_next("user/info", 45009, 1);
        assert_eq!(
            t.get_json("/cgi-bin/user/info?access_token=bad&openid=oA")
                .await["errcode"],
            40001
        );
        let token = t.access_token().await;
        let uri = format!("/cgi-bin/user/info?access_token={token}&openid=oA");
        assert_eq!(t.get_json(&uri).await["errcode"], 45009);
        assert_eq!(t.get_json(&uri).await["subscribe"], 1);
        assert_eq!(t.post_json(&uri, &json!({})).await["errcode"], 43001);
    }
}
