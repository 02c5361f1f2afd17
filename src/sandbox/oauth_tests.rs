//! Web OAuth over HTTP: the consent page, the code exchange and userinfo.

use super::encode_component;
use super::test_support::{spawn, TestSim, TEST_APPID, TEST_SECRET};

const REDIRECT: &str = "http://127.0.0.1:8080/invite/oauth?next=%2Finvite";

fn authorize_uri(appid: &str, redirect: &str, scope: &str, state: &str) -> String {
    format!(
        "/connect/oauth2/authorize?appid={appid}&redirect_uri={}&response_type=code&scope={scope}&state={state}",
        encode_component(redirect)
    )
}

fn exchange_uri(appid: &str, secret: &str, code: &str) -> String {
    format!("/sns/oauth2/access_token?appid={appid}&secret={secret}&code={code}&grant_type=authorization_code")
}

async fn location(t: &TestSim, uri: &str) -> String {
    let response = t.get(uri).await;
    assert_eq!(response.status(), 302, "{uri}");
    response.headers()["location"].to_str().unwrap().to_owned()
}

#[actix_web::test]
async fn authorize_rejects_what_wechat_rejects() {
    let t = spawn().await;
    let cases = [
        (
            authorize_uri("wxwrong", REDIRECT, "snsapi_base", "s"),
            "appid错误",
        ),
        (
            authorize_uri(TEST_APPID, REDIRECT, "snsapi_login", "s"),
            "scope",
        ),
        (
            authorize_uri(TEST_APPID, "/invite/oauth", "snsapi_base", "s"),
            "redirect_uri",
        ),
        (
            authorize_uri(
                TEST_APPID,
                "http://elsewhere.example/cb",
                "snsapi_base",
                "s",
            ),
            "域名",
        ),
        (
            authorize_uri(TEST_APPID, REDIRECT, "snsapi_base", "a-b"),
            "state",
        ),
    ];
    for (uri, expected) in cases {
        let response = t.get(&uri).await;
        assert_eq!(response.status(), 400, "{uri}");
        let page = response.text().await.unwrap();
        assert!(
            page.contains(expected) && page.contains("沙箱模式"),
            "{uri}: {page}"
        );
    }
}

#[actix_web::test]
async fn choosing_a_user_redirects_with_code_and_state() {
    let t = spawn().await;
    t.sim.add_user("oA", "<b>阿甲</b>", true);
    let uri = authorize_uri(TEST_APPID, REDIRECT, "snsapi_userinfo", "xyz123");
    let page = t.get(&uri).await.text().await.unwrap();
    assert!(page.contains("授权登录 — 选择一个测试用户"));
    assert!(
        page.contains("&#60;b&#62;阿甲&#60;/b&#62;"),
        "nicknames are escaped"
    );
    assert!(page.contains("sandbox_openid=oA"));

    let target = location(&t, &format!("{uri}&sandbox_openid=oA")).await;
    let prefix = "http://127.0.0.1:8080/invite/oauth?next=%2Finvite&code=";
    assert!(
        target.starts_with(prefix) && target.ends_with("&state=xyz123"),
        "{target}"
    );
    let code = &target[prefix.len()..target.len() - "&state=xyz123".len()];

    let token = t
        .get_json(&exchange_uri(TEST_APPID, TEST_SECRET, code))
        .await;
    assert_eq!(token["openid"], "oA");
    assert_eq!(token["scope"], "snsapi_userinfo");
    assert_eq!(token["expires_in"], 7200);
    assert_eq!(
        t.get_json(&exchange_uri(TEST_APPID, TEST_SECRET, code))
            .await["errcode"],
        40163
    );

    let access = token["access_token"].as_str().unwrap();
    let info = t
        .get_json(&format!(
            "/sns/userinfo?access_token={access}&openid=oA&lang=zh_CN"
        ))
        .await;
    assert_eq!(info["nickname"], "<b>阿甲</b>");
    let avatar_url = info["headimgurl"].as_str().unwrap();
    assert_eq!(avatar_url, format!("{}/avatar/oA.png", t.base));
    let avatar = t
        .http
        .get(avatar_url)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(image::load_from_memory(&avatar).unwrap().width(), 132);
    assert_eq!(
        t.get_json(&format!("/sns/userinfo?access_token={access}&openid=oB"))
            .await["errcode"],
        40003
    );
    assert_eq!(t.sim.calls("oauth2/access_token"), 2);
    assert_eq!(t.sim.calls("sns/userinfo"), 2);
}

#[actix_web::test]
async fn new_user_form_creates_and_approves() {
    let t = spawn().await;
    let form = [
        ("appid", TEST_APPID),
        ("redirect_uri", "http://127.0.0.1/cb"),
        ("response_type", "code"),
        ("scope", "snsapi_base"),
        ("state", ""),
        ("nickname", "小明"),
    ];
    let response = t
        .http
        .post(t.url("/connect/oauth2/authorize"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 302);
    assert!(response.headers()["location"]
        .to_str()
        .unwrap()
        .starts_with("http://127.0.0.1/cb?code="));
    let users = t.sim.users();
    assert_eq!(users[0].nickname, "小明");
    assert!(!users[0].following);
    assert_eq!(users[0].openid.len(), 28);
}

#[actix_web::test]
async fn codes_are_checked_and_expire() {
    let t = spawn().await;
    let code = t.sim.oauth_code_for("oA", "snsapi_base");
    assert_eq!(
        t.get_json(&exchange_uri("wxwrong", TEST_SECRET, &code))
            .await["errcode"],
        40013
    );
    assert_eq!(
        t.get_json(&exchange_uri(TEST_APPID, "wrong", &code)).await["errcode"],
        40125
    );
    assert_eq!(
        t.get_json(&exchange_uri(TEST_APPID, TEST_SECRET, "nope"))
            .await["errcode"],
        40029
    );
    t.sim.advance_clock(301);
    assert_eq!(
        t.get_json(&exchange_uri(TEST_APPID, TEST_SECRET, &code))
            .await["errcode"],
        40029
    );

    let code = t.sim.oauth_code_for("oA", "snsapi_base");
    let token = t
        .get_json(&exchange_uri(TEST_APPID, TEST_SECRET, &code))
        .await;
    let access = token["access_token"].as_str().unwrap();
    // A base-scope token cannot read the profile; nor can the global access_token.
    assert_eq!(
        t.get_json(&format!("/sns/userinfo?access_token={access}&openid=oA"))
            .await["errcode"],
        48001
    );
    let global = t.access_token().await;
    assert_eq!(
        t.get_json(&format!("/sns/userinfo?access_token={global}&openid=oA"))
            .await["errcode"],
        40001
    );
    t.sim.advance_clock(7200);
    assert_eq!(
        t.get_json(&format!("/sns/userinfo?access_token={access}&openid=oA"))
            .await["errcode"],
        42001
    );
}
