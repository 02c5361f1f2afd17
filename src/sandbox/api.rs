//! The user and message APIs: `user/info`, `user/get`, `message/custom/send`,
//! `message/template/send`; plus what every `/cgi-bin` route shares (query params, wrong method).

use std::collections::HashMap;
use std::ops::Bound;

use actix_web::{web, HttpResponse, ResponseError};
use rand::Rng;
use serde_json::{json, Value};

use super::state::{InboxBody, Via, WxError, SERVICE_WINDOW};
use super::Simulator;

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
    let in_window = user.following
        && user
            .last_interaction
            .is_some_and(|at| now - at <= SERVICE_WINDOW);
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
    if !in_window {
        return Err(WxError::new(45015));
    }
    st.deliver(touser, Via::Custom, message);
    Ok(ok())
}

/// Any `template_id` of the form `tpl_*` exists in the simulated account.
async fn template_send(
    sim: web::Data<Simulator>,
    q: Params,
    body: web::Bytes,
) -> Result<HttpResponse, WxError> {
    sim.gate("message/template/send", token(&q))?;
    sim.lag().await;
    let body: Value = serde_json::from_slice(&body).map_err(|_| WxError::new(47001))?;
    let touser = body.get("touser").and_then(Value::as_str).unwrap_or("");
    let mut st = sim.state();
    let following = st.users.get(touser).ok_or(WxError::new(40003))?.following;
    let template_id = body
        .get("template_id")
        .and_then(Value::as_str)
        .filter(|id| id.len() > 4 && id.starts_with("tpl_"))
        .ok_or(WxError::new(40037))?;
    // data is {"keyword": {"value": "…", "color"?: "…"}, …}
    let data = body
        .get("data")
        .filter(|d| {
            d.as_object().is_some_and(|fields| {
                fields
                    .values()
                    .all(|f| f.get("value").is_some_and(Value::is_string))
            })
        })
        .ok_or(WxError::new(47001))?;
    let url = match body.get("url") {
        None | Some(Value::Null) => None,
        Some(Value::String(u)) => Some(u.clone()),
        Some(_) => return Err(WxError::new(47001)),
    };
    if !following {
        return Err(WxError::new(43004));
    }
    let msgid: i64 = rand::thread_rng().gen_range(1_000_000_000..i64::from(i32::MAX) * 2);
    let message = InboxBody::Template {
        template_id: template_id.to_owned(),
        url,
        data: data.clone(),
        msgid,
    };
    st.deliver(touser, Via::Template, message);
    Ok(HttpResponse::Ok().json(json!({ "errcode": 0, "errmsg": "ok", "msgid": msgid })))
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
    async fn custom_send_respects_the_48_hour_window() {
        let t = spawn().await;
        t.sim.add_user("oA", "阿甲", true);
        t.sim.add_user("oB", "阿乙", false);
        let token = t.access_token().await;
        let uri = format!("/cgi-bin/message/custom/send?access_token={token}");
        let text = |to: &str| json!({"touser": to, "msgtype": "text", "text": {"content": "你好"}});
        assert_eq!(t.post_json(&uri, &text("oA")).await["errcode"], 0);
        assert_eq!(t.post_json(&uri, &text("oB")).await["errcode"], 45015);
        assert_eq!(t.post_json(&uri, &text("oZ")).await["errcode"], 40003);
        let no_content = json!({"touser": "oA", "msgtype": "text", "text": {}});
        assert_eq!(t.post_json(&uri, &no_content).await["errcode"], 40008);
        let bad_type = json!({"touser": "oA", "msgtype": "voice", "voice": {"media_id": "x"}});
        assert_eq!(t.post_json(&uri, &bad_type).await["errcode"], 40008);
        let bad_media = json!({"touser": "oA", "msgtype": "image", "image": {"media_id": "nope"}});
        assert_eq!(t.post_json(&uri, &bad_media).await["errcode"], 40007);

        t.sim.advance_clock(48 * 3600 + 1);
        let token = t.access_token().await;
        let uri = format!("/cgi-bin/message/custom/send?access_token={token}");
        assert_eq!(t.post_json(&uri, &text("oA")).await["errcode"], 45015);
        let inbox = t.sim.inbox("oA");
        assert_eq!(inbox.len(), 1);
        assert_eq!(
            inbox[0].body,
            InboxBody::Text {
                content: "你好".into()
            }
        );
    }

    #[actix_web::test]
    async fn template_send_needs_a_tpl_id_and_a_follower() {
        let t = spawn().await;
        t.sim.add_user("oA", "阿甲", true);
        t.sim.add_user("oB", "阿乙", false);
        let token = t.access_token().await;
        let uri = format!("/cgi-bin/message/template/send?access_token={token}");
        let msg = |to: &str, tpl: &str| {
            json!({"touser": to, "template_id": tpl, "url": "https://example.com/x",
                   "data": {"first": {"value": "恭喜"}, "keyword1": {"value": "3 人", "color": "#173177"}}})
        };
        let sent = t.post_json(&uri, &msg("oA", "tpl_reward")).await;
        assert_eq!(sent["errcode"], 0);
        assert!(sent["msgid"].is_i64());
        assert_eq!(
            t.post_json(&uri, &msg("oA", "reward")).await["errcode"],
            40037
        );
        assert_eq!(
            t.post_json(&uri, &msg("oB", "tpl_reward")).await["errcode"],
            43004
        );
        let bad_data = json!({"touser": "oA", "template_id": "tpl_x", "data": {"first": "恭喜"}});
        assert_eq!(t.post_json(&uri, &bad_data).await["errcode"], 47001);
        assert_eq!(t.sim.inbox("oA").len(), 1);
        assert_eq!(t.sim.inbox("oA")[0].via, Via::Template);
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
