//! Pushes end to end: the simulator posts to a tiny receiver that checks them the way Fission's
//! callback must (signature, msg_signature, decryption) and answers passive replies.

use std::collections::HashMap;
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{web, App, HttpResponse, HttpServer};
use serde_json::json;

use super::test_support::{spawn_with, TestSim, TEST_APPID};
use super::{InboxBody, SimConfig, SimError, Via};
use crate::wechat::crypto::{verify_signature, MessageCrypto};
use crate::wechat::message::{parse_encrypted_envelope, parse_push, text_reply, Push};

const TOKEN: &str = "testtoken";
/// Tencent's sample EncodingAESKey.
const AES_KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";

#[derive(Clone, Copy)]
enum Answer {
    Success,
    Welcome,
    /// A reply with To and From swapped, a classic bug.
    Swapped,
    /// A plaintext reply even in safe mode.
    Plaintext,
    Status500,
    Slow,
}

/// What the receiver saw of one push.
#[derive(Clone, Debug)]
struct Seen {
    query: HashMap<String, String>,
    signature_ok: bool,
    push: Push,
}

#[derive(Clone)]
struct Receiver {
    answer: Arc<Mutex<Answer>>,
    seen: Arc<Mutex<Vec<Seen>>>,
    crypto: Option<MessageCrypto>,
}

impl Receiver {
    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
    fn answer(&self, answer: Answer) {
        *self.answer.lock().unwrap() = answer;
    }
}

async fn callback(
    rx: web::Data<Receiver>,
    q: web::Query<HashMap<String, String>>,
    body: web::Bytes,
) -> HttpResponse {
    let param = |k: &str| q.get(k).map(String::as_str).unwrap_or("");
    let signature_ok = verify_signature(
        param("signature"),
        &[TOKEN, param("timestamp"), param("nonce")],
    );
    let xml = match &rx.crypto {
        Some(crypto) => {
            let encrypt = parse_encrypted_envelope(&body).expect("envelope");
            assert_eq!(param("encrypt_type"), "aes");
            assert!(crypto.verify_msg_signature(
                param("msg_signature"),
                param("timestamp"),
                param("nonce"),
                &encrypt
            ));
            crypto.decrypt(&encrypt).expect("decrypt")
        }
        None => String::from_utf8(body.to_vec()).expect("utf8"),
    };
    let push = parse_push(xml.as_bytes()).expect("push");
    rx.seen.lock().unwrap().push(Seen {
        query: q.into_inner(),
        signature_ok,
        push: push.clone(),
    });
    let answer = *rx.answer.lock().unwrap();
    let reply = match answer {
        Answer::Success => return HttpResponse::Ok().body("success"),
        Answer::Status500 => return HttpResponse::InternalServerError().finish(),
        Answer::Slow => {
            tokio::time::sleep(Duration::from_secs(6)).await;
            return HttpResponse::Ok().body("success");
        }
        Answer::Swapped => text_reply(&push.to_user, &push.from_user, push.create_time, "欢迎"),
        Answer::Welcome | Answer::Plaintext => text_reply(
            &push.from_user,
            &push.to_user,
            push.create_time,
            "欢迎关注！",
        ),
    };
    match (&rx.crypto, answer) {
        (Some(crypto), Answer::Welcome | Answer::Swapped) => {
            HttpResponse::Ok().body(crypto.encrypted_reply(&reply, "1700000000", "nonce1"))
        }
        _ => HttpResponse::Ok().body(reply),
    }
}

/// A receiver and a simulator pushing to it.
async fn setup(safe_mode: bool) -> (TestSim, Receiver) {
    setup_with(safe_mode, SimConfig::default().push_timeout).await
}

async fn setup_with(safe_mode: bool, push_timeout: Duration) -> (TestSim, Receiver) {
    let rx = Receiver {
        answer: Arc::new(Mutex::new(Answer::Welcome)),
        seen: Arc::default(),
        crypto: safe_mode.then(|| MessageCrypto::new(AES_KEY, TOKEN, TEST_APPID).unwrap()),
    };
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/wechat/callback", listener.local_addr().unwrap());
    let data = web::Data::new(rx.clone());
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .route("/wechat/callback", web::post().to(callback))
    })
    .workers(1)
    .listen(listener)
    .unwrap()
    .run();
    actix_web::rt::spawn(server);
    let t = spawn_with(|c| {
        c.callback_url = Some(url);
        c.encoding_aes_key = safe_mode.then(|| AES_KEY.to_owned());
        c.push_timeout = push_timeout;
    })
    .await;
    (t, rx)
}

#[actix_web::test]
async fn subscribe_through_a_ticket_then_scan() {
    let (t, rx) = setup(false).await;
    let ticket = t.permanent_ticket(7).await;
    t.sim.add_user("oA", "阿甲", false);

    let outcome = t.sim.follow("oA", Some(&ticket)).await.unwrap();
    assert_eq!(outcome.status, 200);
    let seen = rx.seen();
    assert!(seen[0].signature_ok);
    assert_eq!(seen[0].query["openid"], "oA");
    assert!(!seen[0].query.contains_key("encrypt_type"));
    let push = &seen[0].push;
    assert_eq!(
        (push.event.as_deref(), push.event_key.as_deref()),
        (Some("subscribe"), Some("qrscene_7"))
    );
    assert_eq!(push.ticket.as_deref(), Some(ticket.as_str()));
    assert_eq!(push.to_user, t.sim.account_id());
    assert_eq!(push.from_user, "oA");
    assert_eq!(push.create_time, t.sim.now());

    let inbox = t.sim.inbox("oA");
    assert_eq!(inbox[0].via, Via::PassiveReply);
    assert_eq!(
        inbox[0].body,
        InboxBody::Text {
            content: "欢迎关注！".into()
        }
    );
    let user = &t.sim.users()[0];
    assert!(user.following);
    assert_eq!(
        (user.subscribe_scene.as_str(), user.qr_scene),
        ("ADD_SCENE_QR_CODE", 7)
    );

    t.sim.follow("oA", Some(&ticket)).await.unwrap();
    let scan = &rx.seen()[1].push;
    assert_eq!(
        (scan.event.as_deref(), scan.event_key.as_deref()),
        (Some("SCAN"), Some("7"))
    );
    assert!(matches!(
        t.sim.follow("oA", None).await,
        Err(SimError::AlreadyFollowing(_))
    ));
    assert!(matches!(
        t.sim.follow("oA", Some("nope")).await,
        Err(SimError::UnknownTicket)
    ));
    assert!(matches!(
        t.sim.follow("oZ", None).await,
        Err(SimError::UnknownUser(_))
    ));
}

#[actix_web::test]
async fn safe_mode_pushes_are_encrypted_and_replies_decrypted() {
    let (t, rx) = setup(true).await;
    let reply = t
        .create_qr(json!({"action_name":"QR_STR_SCENE","action_info":{"scene":{"scene_str":"inv_42"}},"expire_seconds":3600}))
        .await;
    let ticket = reply["ticket"].as_str().unwrap();
    t.sim.add_user("oA", "阿甲", false);
    let outcome = t.sim.follow("oA", Some(ticket)).await.unwrap();
    assert_eq!(outcome.reply_error, None);
    assert!(rx.seen()[0].signature_ok);
    assert_eq!(
        rx.seen()[0].push.event_key.as_deref(),
        Some("qrscene_inv_42")
    );
    assert_eq!(
        t.sim.inbox("oA")[0].body,
        InboxBody::Text {
            content: "欢迎关注！".into()
        }
    );
    assert_eq!(t.sim.users()[0].qr_scene_str, "inv_42");

    // In safe mode WeChat drops a plaintext reply.
    rx.answer(Answer::Plaintext);
    let outcome = t.sim.follow("oA", Some(ticket)).await.unwrap();
    assert!(outcome.reply_error.is_some());
    assert_eq!(t.sim.inbox("oA").len(), 1);
}

#[actix_web::test]
async fn misaddressed_replies_and_failed_callbacks() {
    let (t, rx) = setup(false).await;
    t.sim.add_user("oA", "阿甲", false);
    rx.answer(Answer::Status500);
    let outcome = t.sim.follow("oA", None).await.unwrap();
    assert_eq!(outcome.status, 500);
    assert!(!t.sim.users()[0].following, "a failed push changes nothing");

    rx.answer(Answer::Swapped);
    let outcome = t.sim.follow("oA", None).await.unwrap();
    assert!(outcome.reply_error.unwrap().contains("ToUserName"));
    assert!(t.sim.inbox("oA").is_empty());
    let plain = &rx.seen()[1].push;
    assert_eq!(
        (plain.event.as_deref(), plain.event_key.as_deref()),
        (Some("subscribe"), None)
    );
    assert_eq!(t.sim.users()[0].subscribe_scene, "ADD_SCENE_OTHERS");
}

#[actix_web::test]
async fn text_messages_unfollow_and_replay() {
    let (t, rx) = setup(false).await;
    rx.answer(Answer::Success);
    t.sim.add_user("oA", "阿甲", true);
    assert!(matches!(
        t.sim.unfollow("oB").await,
        Err(SimError::UnknownUser(_))
    ));

    t.sim.advance_clock(47 * 3600);
    let sent = t.sim.send_text("oA", "海报").await.unwrap();
    assert!(sent.reply_xml.is_none());
    let text = &rx.seen()[0].push;
    assert_eq!(
        (text.msg_type.as_str(), text.content.as_deref()),
        ("text", Some("海报"))
    );
    assert!(text.msg_id.is_some());
    // The message reopened the 48 h window.
    t.sim.advance_clock(2 * 3600);
    let token = t.access_token().await;
    let send = format!("/cgi-bin/message/custom/send?access_token={token}");
    let body = json!({"touser":"oA","msgtype":"text","text":{"content":"你的海报"}});
    assert_eq!(t.post_json(&send, &body).await["errcode"], 0);

    t.sim.unfollow("oA").await.unwrap();
    assert_eq!(rx.seen()[1].push.event.as_deref(), Some("unsubscribe"));
    assert!(!t.sim.users()[0].following);
    assert!(matches!(
        t.sim.send_text("oA", "x").await,
        Err(SimError::NotFollowing(_))
    ));
    assert_eq!(t.post_json(&send, &body).await["errcode"], 45015);

    // A retry is the same push again, same CreateTime.
    let again = parse_push(sent.push_xml.as_bytes()).unwrap();
    t.sim.deliver(&again).await.unwrap();
    assert_eq!(rx.seen()[2].push, rx.seen()[0].push);
}

#[actix_web::test]
async fn a_callback_slower_than_the_push_timeout_fails_the_push() {
    // WeChat's timeout is 5 s (the default); a short one keeps the test short, and the slow
    // callback answers only long after it.
    let (t, rx) = setup_with(false, Duration::from_millis(200)).await;
    rx.answer(Answer::Slow);
    t.sim.add_user("oA", "阿甲", false);
    assert!(matches!(
        t.sim.follow("oA", None).await,
        Err(SimError::Transport(_))
    ));
    assert!(!t.sim.users()[0].following);
}

#[actix_web::test]
async fn no_callback_configured() {
    let t = spawn_with(|_| {}).await;
    t.sim.add_user("oA", "阿甲", false);
    assert!(matches!(
        t.sim.follow("oA", None).await,
        Err(SimError::NoCallback)
    ));
}
