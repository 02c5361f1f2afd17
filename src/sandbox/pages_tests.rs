//! The pages, as a browser uses them, mounted at `/sandbox` the way Fission mounts them.

use std::net::TcpListener;

use actix_web::{web, App, HttpResponse, HttpServer};
use serde_json::json;

use super::encode_component;
use super::test_support::{test_config, TestSim};
use super::Simulator;
use crate::wechat::message::{parse_push, text_reply};

/// Answers every push with a passive text reply that would be dangerous if not escaped.
async fn callback(body: web::Bytes) -> HttpResponse {
    match parse_push(&body) {
        Ok(push) => HttpResponse::Ok().body(text_reply(
            &push.from_user,
            &push.to_user,
            push.create_time,
            "欢迎<script>x</script>",
        )),
        Err(_) => HttpResponse::BadRequest().finish(),
    }
}

/// One server, like Fission's: the simulator under /sandbox and a callback beside it.
async fn spawn_mounted() -> TestSim {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let mut cfg = test_config(&format!("{base}/sandbox"));
    cfg.callback_url = Some(format!("{base}/wechat/callback"));
    let sim = Simulator::new(cfg);
    let mounted = sim.clone();
    let server = HttpServer::new(move || {
        let s = mounted.clone();
        App::new()
            .service(web::scope("/sandbox").configure(move |c| s.configure(c)))
            .route("/wechat/callback", web::post().to(callback))
    })
    .workers(2)
    .listen(listener)
    .unwrap()
    .run();
    actix_web::rt::spawn(server);
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    TestSim {
        sim,
        base: format!("{base}/sandbox"),
        http,
    }
}

async fn page(t: &TestSim, path: &str, status: u16) -> String {
    let response = t.get(path).await;
    assert_eq!(response.status(), status, "{path}");
    let html = response.text().await.unwrap();
    assert!(html.contains("沙箱模式 SANDBOX"), "banner on {path}");
    html
}

#[actix_web::test]
async fn index_and_slash_redirect() {
    let t = spawn_mounted().await;
    let html = page(&t, "/", 200).await;
    assert!(html.contains("href=\"/sandbox/users\""));
    let bare = t.http.get(t.base.clone()).send().await.unwrap();
    assert_eq!(bare.status(), 303);
    assert_eq!(bare.headers()["location"], "/sandbox/");
}

#[actix_web::test]
async fn scanning_a_code_follows_and_shows_the_reply() {
    let t = spawn_mounted().await;
    let reply = t
        .create_qr(
            json!({"action_name":"QR_LIMIT_STR_SCENE","action_info":{"scene":{"scene_str":"u_1"}}}),
        )
        .await;
    let qr_url = reply["url"].as_str().unwrap();
    let ticket = reply["ticket"].as_str().unwrap();
    assert!(qr_url.starts_with(&format!("{}/scan?ticket=", t.base)));

    let html = t
        .http
        .get(qr_url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("Fission 测试号")
            && html.contains("scene_str=u_1")
            && html.contains("关注公众号")
    );
    let expired = page(&t, "/scan?ticket=nope", 404).await;
    assert!(expired.contains("二维码已过期或不存在"));

    let form = [("ticket", ticket), ("openid", ""), ("nickname", "小红")];
    let result = t
        .http
        .post(t.url("/scan"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(result.status(), 200);
    let result = result.text().await.unwrap();
    assert!(result.contains("已关注公众号"), "{result}");
    assert!(
        result.contains("欢迎&#60;script&#62;x&#60;/script&#62;"),
        "reply escaped: {result}"
    );
    let user = t.sim.users().remove(0);
    assert!(user.following && user.nickname == "小红");
    assert_eq!(user.qr_scene_str, "u_1");

    // The same user scanning again is a SCAN.
    let html = t
        .http
        .get(qr_url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("（已关注）"));
    let form = [
        ("ticket", ticket),
        ("openid", user.openid.as_str()),
        ("nickname", ""),
    ];
    let again = t
        .http
        .post(t.url("/scan"))
        .form(&form)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(again.contains("已再次扫码") && again.contains("SCAN"));
}

#[actix_web::test]
async fn users_page_follow_unfollow_and_inbox() {
    let t = spawn_mounted().await;
    let created = t
        .http
        .post(t.url("/users"))
        .form(&[("nickname", "阿甲")])
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 303);
    let openid = t.sim.users()[0].openid.clone();
    let path = encode_component(&openid);
    assert!(page(&t, "/users", 200).await.contains("阿甲"));

    let followed = t
        .http
        .post(t.url(&format!("/users/{path}/follow")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(followed.contains("已关注公众号"));
    let again = t
        .http
        .post(t.url(&format!("/users/{path}/follow")))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 409);

    let token = t.access_token().await;
    let send = format!("/cgi-bin/message/template/send?access_token={token}");
    let template = json!({"touser": openid, "template_id": "tpl_invite_progress", "url": "javascript:alert(1)",
                          "data": {"thing1": {"value": "恭喜<b>"}, "number2": {"value": "1"}, "thing3": {"value": "x"}}});
    assert_eq!(t.post_json(&send, &template).await["errcode"], 0);
    let inbox = page(&t, &format!("/inbox/{path}"), 200).await;
    assert!(
        inbox.contains("被动回复")
            && inbox.contains("模板消息")
            && inbox.contains("tpl_invite_progress")
    );
    assert!(inbox.contains("恭喜&#60;b&#62;") && !inbox.contains("javascript:alert"));
    page(&t, "/inbox/nobody", 404).await;

    let unfollowed = t
        .http
        .post(t.url(&format!("/users/{path}/unfollow")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(unfollowed.contains("已取消关注"));
    assert!(!t.sim.users()[0].following);
}

#[actix_web::test]
async fn inbox_form_sends_a_text_message() {
    let t = spawn_mounted().await;
    t.sim.add_user("oA", "阿甲", true);
    let sent = t
        .http
        .post(t.url("/inbox/oA/send"))
        .form(&[("content", "海报")])
        .send()
        .await
        .unwrap();
    assert_eq!(sent.status(), 303);
    assert_eq!(sent.headers()["location"], "/sandbox/inbox/oA");
    // The callback answered with a passive reply to the message.
    assert_eq!(t.sim.inbox("oA").len(), 1);
}

#[actix_web::test]
async fn the_inbox_shows_the_allowance_and_what_was_refused() {
    let t = spawn_mounted().await;
    t.sim.add_user("oQuota", "阿限", true);
    let path = encode_component("oQuota");
    let before = page(&t, &format!("/inbox/{path}"), 200).await;
    assert!(before.contains("还可发 3 条"), "{before}");
    let token = t.access_token().await;
    let send = format!("/cgi-bin/message/custom/send?access_token={token}");
    let text = json!({"touser": "oQuota", "msgtype": "text", "text": {"content": "你好"}});
    for errcode in [0, 0, 0, 45047] {
        assert_eq!(t.post_json(&send, &text).await["errcode"], errcode);
    }
    let after = page(&t, &format!("/inbox/{path}"), 200).await;
    assert!(after.contains("现在发不了"), "{after}");
    assert!(
        after.contains("45047") && after.contains("超过条数"),
        "{after}"
    );
}
