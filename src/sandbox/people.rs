//! The test users' pages: the list (follow / unfollow / create) and each user's inbox, where
//! they can also send the account a text message.

use actix_web::{web, HttpResponse};
use askama::Template;
use serde::Deserialize;

use super::pages::{error_page, local_time, render, result_page, see_other};
use super::state::{random_openid, InboxBody, Via};
use super::{encode_component, Simulator};

pub(super) fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/users")
            .route(web::get().to(users_page))
            .route(web::post().to(create_user)),
    )
    .route("/users/{openid}/follow", web::post().to(follow_user))
    .route("/users/{openid}/unfollow", web::post().to(unfollow_user))
    .route("/inbox/{openid}", web::get().to(inbox_page))
    .route("/inbox/{openid}/send", web::post().to(inbox_send));
}

struct UserRow {
    openid: String,
    openid_path: String,
    nickname: String,
    following: bool,
    detail: String,
    messages: usize,
}

#[derive(Template)]
#[template(path = "sandbox/users.html")]
struct UsersPage {
    title: &'static str,
    base: String,
    users: Vec<UserRow>,
}

async fn users_page(sim: web::Data<Simulator>) -> HttpResponse {
    let users = sim
        .users()
        .into_iter()
        .map(|u| {
            let mut detail = Vec::new();
            if let Some(at) = u.subscribe_time {
                let via = match (u.qr_scene, u.qr_scene_str.as_str()) {
                    (0, "") => String::new(),
                    (0, s) => format!("（扫码 {s}）"),
                    (id, _) => format!("（扫码 {id}）"),
                };
                detail.push(format!("关注于 {}{via}", local_time(at)));
            }
            if let Some(at) = u.last_interaction {
                detail.push(format!("最近互动 {}", local_time(at)));
            }
            UserRow {
                openid_path: encode_component(&u.openid),
                messages: sim.inbox(&u.openid).len(),
                openid: u.openid,
                nickname: u.nickname,
                following: u.following,
                detail: detail.join(" · "),
            }
        })
        .collect();
    render(
        &UsersPage {
            title: "测试用户",
            base: sim.link(""),
            users,
        },
        200,
    )
}

#[derive(Deserialize)]
struct NewUserForm {
    nickname: String,
}

async fn create_user(sim: web::Data<Simulator>, form: web::Form<NewUserForm>) -> HttpResponse {
    let nickname = form.nickname.trim();
    if nickname.is_empty() {
        return error_page(&sim, 400, "无法新建", "请填写昵称");
    }
    sim.add_user(&random_openid(), nickname, false);
    see_other(sim.link("/users"))
}

async fn follow_user(sim: web::Data<Simulator>, openid: web::Path<String>) -> HttpResponse {
    let result = sim.follow(&openid, None).await;
    result_page(&sim, &openid, result)
}

async fn unfollow_user(sim: web::Data<Simulator>, openid: web::Path<String>) -> HttpResponse {
    let result = sim.unfollow(&openid).await;
    result_page(&sim, &openid, result)
}

enum MessageKind {
    Text(String),
    Image(String),
    Template {
        template_id: String,
        fields: Vec<(String, String)>,
        link: Option<String>,
    },
    Other {
        msg_type: String,
        xml: String,
    },
}

struct MessageView {
    via: &'static str,
    time: String,
    kind: MessageKind,
}

#[derive(Template)]
#[template(path = "sandbox/inbox.html")]
struct InboxPage {
    title: &'static str,
    base: String,
    nickname: String,
    openid: String,
    openid_path: String,
    following: bool,
    messages: Vec<MessageView>,
    /// What customer-service messages WeChat would take now.
    allowance: String,
    refused: Vec<RefusedView>,
}

struct RefusedView {
    via: &'static str,
    time: String,
    errcode: i64,
    reason: &'static str,
}

fn via_name(via: Via) -> &'static str {
    match via {
        Via::Custom => "客服消息",
        Via::Template => "模板消息",
        Via::Subscription => "订阅通知",
        Via::PassiveReply => "被动回复",
    }
}

async fn inbox_page(sim: web::Data<Simulator>, openid: web::Path<String>) -> HttpResponse {
    let Some(user) = sim.state().users.get(openid.as_str()).cloned() else {
        return error_page(
            &sim,
            404,
            "没有这个用户",
            "这个 openid 不是模拟器里的测试用户。",
        );
    };
    let messages = sim
        .inbox(&user.openid)
        .into_iter()
        .map(|m| MessageView {
            via: via_name(m.via),
            time: local_time(m.at),
            kind: match m.body {
                InboxBody::Text { content } => MessageKind::Text(content),
                InboxBody::Image { media_id } => {
                    MessageKind::Image(sim.link(&format!("/media/{}", encode_component(&media_id))))
                }
                InboxBody::Template {
                    template_id,
                    url,
                    data,
                    ..
                } => MessageKind::Template {
                    template_id,
                    fields: data
                        .as_object()
                        .map(|fields| {
                            fields
                                .iter()
                                .map(|(k, v)| {
                                    (k.clone(), v["value"].as_str().unwrap_or("").to_owned())
                                })
                                .collect()
                        })
                        .unwrap_or_default(),
                    // Only web links: a "javascript:" url must not become clickable.
                    link: url.filter(|u| u.starts_with("https://") || u.starts_with("http://")),
                },
                InboxBody::Other { msg_type, xml } => MessageKind::Other { msg_type, xml },
            },
        })
        .collect();
    let (refused, now) = {
        let st = sim.state();
        (
            st.refused.get(&user.openid).cloned().unwrap_or_default(),
            st.now(),
        )
    };
    let refused = refused
        .into_iter()
        .rev()
        .map(|r| RefusedView {
            via: via_name(r.via),
            time: local_time(r.at),
            errcode: r.errcode,
            reason: match r.errcode {
                45047 => "超过条数：关注、扫码或点菜单后 1 分钟内 3 条，发消息后 48 小时内 5 条",
                45015 => "超过时限，或用户已取消关注",
                43101 => "用户没有订阅（或已用完）这个订阅通知",
                43004 => "用户没有关注公众号",
                _ => "微信拒绝",
            },
        })
        .collect();
    let allowance = match user.allowance.check(now) {
        Ok(()) => format!(
            "客服消息：还可发 {} 条，截至 {}",
            user.allowance.left,
            local_time(user.allowance.until)
        ),
        Err(_) => "客服消息：现在发不了（等用户发消息、扫码或点菜单）".to_string(),
    };
    let page = InboxPage {
        title: "消息",
        base: sim.link(""),
        openid_path: encode_component(&user.openid),
        nickname: user.nickname,
        openid: user.openid,
        following: user.following,
        messages,
        allowance,
        refused,
    };
    render(&page, 200)
}

#[derive(Deserialize)]
struct SendForm {
    content: String,
}

async fn inbox_send(
    sim: web::Data<Simulator>,
    openid: web::Path<String>,
    form: web::Form<SendForm>,
) -> HttpResponse {
    if form.content.trim().is_empty() {
        return see_other(sim.link(&format!("/inbox/{}", encode_component(&openid))));
    }
    match sim.send_text(&openid, &form.content).await {
        Ok(_) => see_other(sim.link(&format!("/inbox/{}", encode_component(&openid)))),
        Err(e) => error_page(&sim, 502, "发送失败", &e.to_string()),
    }
}
