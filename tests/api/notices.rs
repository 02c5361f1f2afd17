//! Telling inviters under WeChat's 2023 message rules, against the stand-in (which refuses as
//! WeChat does: 45047 past the count, 45015 past the time, 43101 without an acceptance).
//! Followers act through the stand-in (`follow`, `send_text`, `answer_subscription`), whose
//! pushes reach the service's callback; friends' follows are pushed directly.

use std::time::{Duration, Instant};

use chrono::Utc;
use fission::sandbox::{InboxBody, InboxMessage, Via};

use crate::admin_client::{with_admin, Operator};
use crate::helpers::{openid, Deployment, FakeWechat, TestApp};

const SUB: &str = "sub_invite_progress";
const TPL: &str = "tpl_invite_progress";
const FIELDS: &str = "thing1={invitee}\nnumber2={count}\nthing3={next}";

async fn start(notice_delay_ms: u32) -> (TestApp, FakeWechat) {
    let wechat = FakeWechat::start(100_000, None).await;
    let deployment = with_admin(Deployment::new(&wechat))
        .set("FISSION_NOTICE_DELAY_MS", &notice_delay_ms.to_string());
    let app = TestApp::spawn(&deployment).await;
    wechat
        .sim
        .set_callback(&format!("{}/wechat/callback", app.address));
    (app, wechat)
}

/// The channels the default campaign offers besides customer-service messages.
async fn channels(app: &TestApp, subscription: Option<&str>, template: Option<&str>) {
    sqlx::query(
        "UPDATE campaigns SET subscribe_template_id = $1, subscribe_fields = $3,
                template_id = $2, template_fields = $3
         WHERE is_default",
    )
    .bind(subscription)
    .bind(template)
    .bind(FIELDS)
    .execute(&app.pool)
    .await
    .unwrap();
}

async fn befriend(app: &TestApp, tag: &str, n: usize, scene: i64) {
    let response = app
        .subscribe(&openid(tag, n), Some(scene), Utc::now().timestamp())
        .await;
    assert_eq!(response.status(), 200);
}

/// What reached the follower other than passive replies.
fn sent(wechat: &FakeWechat, who: &str) -> Vec<InboxMessage> {
    wechat
        .sim
        .inbox(who)
        .into_iter()
        .filter(|m| m.via != Via::PassiveReply)
        .collect()
}

async fn wait_sent(wechat: &FakeWechat, who: &str, n: usize) -> Vec<InboxMessage> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let got = sent(wechat, who);
        if got.len() >= n {
            return got;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {n} messages arrived: {got:?}",
            got.len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn wait_waiting(app: &TestApp, who: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM outbox WHERE kind = 'notice' AND status = 'waiting'
               AND payload->>'openid' = $1",
        )
        .bind(who)
        .fetch_one(&app.pool)
        .await
        .unwrap();
        if waiting == 1 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the notice never started waiting"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Calls WeChat refused (Fission should have known better).
async fn refusals(app: &TestApp) -> Vec<(String, String)> {
    sqlx::query_as(
        "SELECT channel, outcome FROM message_log WHERE outcome IN ('45047', '45015', '43101')",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap()
}

fn field(m: &InboxMessage, key: &str) -> String {
    match &m.body {
        InboxBody::Template { data, .. } => data[key]["value"].as_str().unwrap_or("").into(),
        other => panic!("not a template or subscription notice: {other:?}"),
    }
}

fn text(m: &InboxMessage) -> String {
    match &m.body {
        InboxBody::Text { content } => content.clone(),
        other => panic!("not a text: {other:?}"),
    }
}

#[tokio::test]
async fn an_inviter_who_never_wrote_is_told_through_the_subscriptions_they_accepted() {
    let (app, wechat) = start(0).await;
    channels(&app, Some(SUB), None).await;
    // A follower from before Fission: the minute after their follow is long over, and
    // Fission has seen nothing from them, so no customer-service message can reach them.
    let inviter = openid("nwinviter", 1);
    wechat.sim.add_user(&inviter, "小明", true);
    wechat.sim.advance_clock(120);
    let scene = app.issue_code(&inviter).await["scene_id"].as_i64().unwrap();

    let accepted = wechat
        .sim
        .answer_subscription(&inviter, &[SUB], true)
        .await
        .unwrap();
    assert_eq!(accepted.status, 200);
    befriend(&app, "nwfriend", 0, scene).await;
    let first = wait_sent(&wechat, &inviter, 1).await;
    assert_eq!(first[0].via, Via::Subscription);
    assert_eq!(field(&first[0], "number2"), "1");

    // The acceptance is spent: two more friends wait for a channel.
    befriend(&app, "nwfriend", 1, scene).await;
    befriend(&app, "nwfriend", 2, scene).await;
    wait_waiting(&app, &inviter).await;
    assert_eq!(sent(&wechat, &inviter).len(), 1);

    // Accepting again (a moment later) opens one: the waiting notice goes, both friends in it.
    wechat.sim.advance_clock(5);
    wechat
        .sim
        .answer_subscription(&inviter, &[SUB], true)
        .await
        .unwrap();
    let both = wait_sent(&wechat, &inviter, 2).await;
    assert_eq!(both[1].via, Via::Subscription);
    assert_eq!(field(&both[1], "number2"), "3");
    assert_eq!(field(&both[1], "thing1"), "2 位好友");

    assert_eq!(wechat.sim.calls("message/custom/send"), 0);
    assert_eq!(refusals(&app).await, []);
}

#[tokio::test]
async fn one_who_sent_a_message_gets_five_customer_service_messages_then_templates() {
    let (app, wechat) = start(0).await;
    channels(&app, None, Some(TPL)).await;
    let inviter = openid("cfinviter", 1);
    wechat.sim.add_user(&inviter, "小红", true);
    wechat.sim.advance_clock(120);
    let scene = app.issue_code(&inviter).await["scene_id"].as_i64().unwrap();
    // Sending 海报 opens 5 messages within 48 hours (the poster itself is the passive reply).
    let asked = wechat.sim.send_text(&inviter, "海报").await.unwrap();
    assert_eq!(asked.status, 200);

    let friends = 8;
    for n in 0..friends {
        befriend(&app, "cffriend", n, scene).await;
        wait_sent(&wechat, &inviter, n + 1).await;
    }
    let got = sent(&wechat, &inviter);
    let custom = got.iter().filter(|m| m.via == Via::Custom).count();
    let templates: Vec<&InboxMessage> = got.iter().filter(|m| m.via == Via::Template).collect();
    assert!(custom <= 5, "{custom} customer-service messages");
    assert_eq!(custom + templates.len(), friends, "{got:?}");
    assert!(templates.len() >= 3);
    assert_eq!(
        field(templates.last().unwrap(), "number2"),
        friends.to_string()
    );
    // Every customer-service call WeChat got, it took.
    assert_eq!(wechat.sim.calls("message/custom/send"), custom);
    assert_eq!(refusals(&app).await, []);

    // The health page counts them by channel.
    let mut operator = Operator::new(&app);
    operator.login().await;
    let page = operator.get("/admin/health").await.text().await.unwrap();
    for (channel, n) in [("客服消息", custom), ("模板消息", templates.len())] {
        let row = format!(
            "<td>{channel}</td><td><span class=\"pill\">已发送</span></td><td class=\"num\">{n}</td><td class=\"num\">{n}</td>"
        );
        assert!(page.contains(&row), "{row} not in the health page");
    }
}

#[tokio::test]
async fn twenty_friends_within_a_minute_make_one_message_with_the_total() {
    let (app, wechat) = start(2000).await;
    let inviter = openid("burstinviter", 1);
    wechat.sim.add_user(&inviter, "阿强", false);
    // Following (through the stand-in) opens 3 messages within a minute.
    assert_eq!(wechat.sim.follow(&inviter, None).await.unwrap().status, 200);
    let scene = app.issue_code(&inviter).await["scene_id"].as_i64().unwrap();
    let at = Utc::now().timestamp();
    let follows = (0..20).map(|n| app.subscribe_owned(openid("burstfriend", n), scene, at));
    for response in futures_util::future::join_all(follows).await {
        assert_eq!(response.status(), 200);
    }
    let got = wait_sent(&wechat, &inviter, 1).await;
    // Give the worker time to send anything else it would (it should not).
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let got_after = sent(&wechat, &inviter);
    assert_eq!(got_after.len(), got.len(), "{got_after:?}");
    assert!(got_after.len() <= 3, "{got_after:?}");
    let last = text(got_after.last().unwrap());
    assert!(last.contains("你已邀请 20 位好友"), "{last}");
    assert_eq!(refusals(&app).await, []);
}

#[tokio::test]
async fn a_new_followers_first_minute_takes_at_most_three_customer_service_messages() {
    let (app, wechat) = start(0).await;
    let inviter = openid("fminviter", 1);
    wechat.sim.add_user(&inviter, "老王", true);
    let code = app.issue_code(&inviter).await;
    let ticket = code["ticket"].as_str().unwrap().to_string();

    // A new follower through the inviter's code: the welcome is the passive reply.
    let newcomer = openid("fmnew", 1);
    wechat.sim.add_user(&newcomer, "小李", false);
    let followed = wechat.sim.follow(&newcomer, Some(&ticket)).await.unwrap();
    assert_eq!(followed.status, 200);
    let welcome = wechat.sim.inbox(&newcomer);
    assert_eq!(welcome.len(), 1);
    assert_eq!(welcome[0].via, Via::PassiveReply);

    // Within their first minute, five friends follow through the newcomer's own code.
    let scene = app.issue_code(&newcomer).await["scene_id"]
        .as_i64()
        .unwrap();
    for n in 0..5 {
        befriend(&app, "fmfriend", n, scene).await;
        if n < 3 {
            wait_sent(&wechat, &newcomer, n + 1).await;
        }
    }
    wait_waiting(&app, &newcomer).await;
    let got = sent(&wechat, &newcomer);
    assert_eq!(got.len(), 3, "{got:?}");
    assert!(got.iter().all(|m| m.via == Via::Custom));
    assert_eq!(wechat.sim.calls("message/custom/send"), 3);
    assert_eq!(refusals(&app).await, []);
}
