//! The invite page's sign-in: WeChat OAuth end to end against the stand-in, the session it
//! sets, and that nothing but that session decides whose page is shown.

use fission::db;
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use reqwest::redirect::Policy;
use reqwest::{StatusCode, Url};

use crate::helpers::{openid, spawn_app, FakeWechat, TestApp, APPID};

/// A browser-like client: keeps cookies, does not follow redirects (the tests look at them).
pub fn cookie_client() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(Policy::none())
        .build()
        .expect("client")
}

fn location(response: &reqwest::Response) -> String {
    response
        .headers()
        .get(LOCATION)
        .expect("a Location header")
        .to_str()
        .expect("ASCII location")
        .to_string()
}

fn query_param(url: &str, name: &str) -> Option<String> {
    Url::parse(url)
        .ok()?
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// Starts OAuth with `client` and returns the `state` the app put in its session.
pub async fn oauth_state(app: &TestApp, client: &reqwest::Client, path: &str) -> String {
    let response = client
        .get(format!("{}{path}", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FOUND);
    query_param(&location(&response), "state").expect("state in the authorize URL")
}

/// Signs `user` in the way WeChat would bring them back, and returns the cookie client.
pub async fn sign_in(
    app: &TestApp,
    wechat: &FakeWechat,
    user: &str,
    scope: &str,
) -> reqwest::Client {
    let client = cookie_client();
    let path = if scope == "snsapi_userinfo" {
        "/invite/profile"
    } else {
        "/invite"
    };
    let state = oauth_state(app, &client, path).await;
    let code = wechat.sim.oauth_code_for(user, scope);
    let back = client
        .get(format!("{}/invite/oauth", app.address))
        .query(&[("code", code.as_str()), ("state", state.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(back.status(), StatusCode::FOUND, "signing in {user}");
    assert_eq!(location(&back), "/invite");
    client
}

async fn get_text(client: &reqwest::Client, url: String) -> (StatusCode, String) {
    let response = client.get(url).send().await.unwrap();
    (response.status(), response.text().await.unwrap())
}

#[tokio::test]
async fn oauth_dance_end_to_end() {
    let (app, wechat) = spawn_app().await;
    let alice = openid("oauthA", 1);
    wechat.sim.add_user(&alice, "阿丽", true);
    let client = cookie_client();

    // No session: off to WeChat's authorize page, every parameter as WeChat requires.
    let start = client
        .get(format!("{}/invite", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(start.status(), StatusCode::FOUND);
    let authorize = location(&start);
    assert!(
        authorize.starts_with(&format!("{}/connect/oauth2/authorize?", wechat.base)),
        "{authorize}"
    );
    assert!(authorize.ends_with("#wechat_redirect"), "{authorize}");
    // The redirect URI is URL-encoded inside the query.
    assert!(
        authorize.contains("redirect_uri=http%3A%2F%2F127.0.0.1%3A"),
        "{authorize}"
    );
    let url = Url::parse(&authorize).unwrap();
    let params: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    let names: Vec<&str> = params.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        names,
        ["appid", "redirect_uri", "response_type", "scope", "state"]
    );
    let param = |name: &str| query_param(&authorize, name).unwrap();
    assert_eq!(param("appid"), APPID);
    assert_eq!(
        param("redirect_uri"),
        format!("{}/invite/oauth", app.address)
    );
    assert_eq!(param("response_type"), "code");
    assert_eq!(param("scope"), "snsapi_base");
    let state = param("state");
    assert_eq!(state.len(), 32);
    assert!(state.bytes().all(|b| b.is_ascii_alphanumeric()), "{state}");

    // The stand-in accepts the request (it checks appid, scope, state and the redirect host)
    // and, approved as Alice, sends the browser back with a code.
    let approve = format!(
        "{}&sandbox_openid={alice}",
        authorize.trim_end_matches("#wechat_redirect")
    );
    let approved = client.get(approve).send().await.unwrap();
    assert_eq!(approved.status(), StatusCode::FOUND);
    let back = location(&approved);
    assert!(
        back.starts_with(&format!("{}/invite/oauth?code=", app.address)),
        "{back}"
    );
    assert_eq!(query_param(&back, "state").as_deref(), Some(state.as_str()));
    let code = query_param(&back, "code").unwrap();

    let signed_in = client.get(&back).send().await.unwrap();
    assert_eq!(signed_in.status(), StatusCode::FOUND);
    assert_eq!(location(&signed_in), "/invite");
    let (status, page) = get_text(&client, format!("{}/invite", app.address)).await;
    assert_eq!(status, 200);
    assert!(page.contains("位好友已通过你关注"), "{page}");
    assert_eq!(wechat.sim.calls("oauth2/access_token"), 1);

    // The same code again (a reload of the redirect, a replay): WeChat says 40163, the
    // follower sees a clear page that leads back to sign-in — not a 500.
    let other = cookie_client();
    let state = oauth_state(&app, &other, "/invite").await;
    let reused = other
        .get(format!("{}/invite/oauth", app.address))
        .query(&[("code", code.as_str()), ("state", state.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(reused.status(), StatusCode::BAD_REQUEST);
    let body = reused.text().await.unwrap();
    assert!(body.contains("已经用过"), "{body}");
    assert!(body.contains(r#"href="/invite""#), "{body}");
    // And that browser is still not signed in.
    let still_out = other
        .get(format!("{}/invite", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(still_out.status(), StatusCode::FOUND);
}

#[tokio::test]
async fn a_state_that_does_not_match_the_session_is_refused() {
    let (app, wechat) = spawn_app().await;
    let bob = openid("oauthB", 1);
    wechat.sim.add_user(&bob, "阿波", true);
    let client = cookie_client();
    let state = oauth_state(&app, &client, "/invite").await;
    let code = wechat.sim.oauth_code_for(&bob, "snsapi_base");
    let wrong = client
        .get(format!("{}/invite/oauth", app.address))
        .query(&[("code", code.as_str()), ("state", "SomeoneElsesState0123")])
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::BAD_REQUEST);
    assert!(wrong.text().await.unwrap().contains("登录请求无效"));
    // The state was single-use: the right one no longer works either, and no code was spent.
    let late = client
        .get(format!("{}/invite/oauth", app.address))
        .query(&[("code", code.as_str()), ("state", state.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(late.status(), StatusCode::BAD_REQUEST);
    assert_eq!(wechat.sim.calls("oauth2/access_token"), 0);
    // A browser with no session at all, or no state parameter, gets the same answer.
    let fresh = cookie_client();
    let (status, _) = get_text(
        &fresh,
        format!("{}/invite/oauth?code={code}&state={state}", app.address),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = get_text(&client, format!("{}/invite/oauth?code={code}", app.address)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn the_page_shows_the_signed_in_followers_data_and_only_theirs() {
    let (app, wechat) = spawn_app().await;
    let (alice, bob) = (openid("pageA", 1), openid("pageB", 1));
    wechat.sim.add_user(&alice, "阿丽", true);
    wechat.sim.add_user(&bob, "阿波", true);
    let friends = [
        (&alice, openid("pageFA", 1), "张小明"),
        (&alice, openid("pageFA", 2), "王大锤"),
        (&bob, openid("pageFB", 1), "李大伟"),
    ];
    let now = chrono::Utc::now().timestamp();
    for (i, (inviter, friend, name)) in friends.iter().enumerate() {
        let code = app.issue_code(inviter).await;
        db::users::set_profile(&app.pool, friend, name, None)
            .await
            .unwrap();
        let response = app
            .subscribe(friend, code["scene_id"].as_i64(), now + i as i64)
            .await;
        assert_eq!(response.status(), 200);
    }

    let client = sign_in(&app, &wechat, &alice, "snsapi_base").await;
    let (_, page) = get_text(&client, format!("{}/invite", app.address)).await;
    assert!(
        page.contains(r#"<strong id="invite-count">2</strong>"#),
        "{page}"
    );
    assert!(page.contains("张*明") && page.contains("王*锤"), "{page}");
    assert!(!page.contains("李*伟"), "Bob's friend on Alice's page");
    assert!(!page.contains(&bob));

    // Naming someone else in the query changes nothing.
    let (_, page) = get_text(&client, format!("{}/invite?openid={bob}", app.address)).await;
    assert!(page.contains("张*明") && !page.contains("李*伟"), "{page}");

    // A friend who leaves within the revoke window stays listed, marked, and stops counting.
    let response = app.unsubscribe(&friends[1].1, now + 10).await;
    assert_eq!(response.status(), 200);
    let (_, page) = get_text(&client, format!("{}/invite", app.address)).await;
    assert!(
        page.contains(r#"<strong id="invite-count">1</strong>"#),
        "{page}"
    );
    assert!(
        page.contains(r#"<li class="revoked"><span class="name">王*锤</span><span class="tag">"#),
        "{page}"
    );

    // Alice's QR code image is hers.
    let png = client
        .get(format!("{}/invite/qrcode.png?openid={bob}", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(png.status(), 200);
    assert_eq!(png.headers()["content-type"], "image/png");
    let decoded = decode_qr(&png.bytes().await.unwrap());
    assert_eq!(
        decoded,
        vec![app.issue_code(&alice).await["url"]
            .as_str()
            .unwrap()
            .to_string()]
    );
}

#[tokio::test]
async fn forged_or_missing_sessions_reveal_nothing() {
    let (app, wechat) = spawn_app().await;
    let alice = openid("forgeA", 1);
    wechat.sim.add_user(&alice, "阿丽", true);
    app.issue_code(&alice).await;

    // Capture the real session cookie as the server set it.
    let client = cookie_client();
    let state = oauth_state(&app, &client, "/invite").await;
    let code = wechat.sim.oauth_code_for(&alice, "snsapi_base");
    let back = client
        .get(format!("{}/invite/oauth", app.address))
        .query(&[("code", code.as_str()), ("state", state.as_str())])
        .send()
        .await
        .unwrap();
    let set_cookie = back.headers()[SET_COOKIE].to_str().unwrap().to_string();
    assert!(set_cookie.starts_with("fission_invite="), "{set_cookie}");
    assert!(set_cookie.contains("HttpOnly"), "{set_cookie}");
    assert!(set_cookie.contains("SameSite=Lax"), "{set_cookie}");
    assert!(
        !set_cookie.contains(&alice),
        "the session is encrypted: {set_cookie}"
    );
    let value = set_cookie
        .trim_start_matches("fission_invite=")
        .split(';')
        .next()
        .unwrap()
        .to_string();

    let bare = reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .unwrap();
    let with_cookie = |cookie: String| {
        bare.get(format!("{}/invite?openid={alice}", app.address))
            .header(COOKIE, format!("fission_invite={cookie}"))
            .send()
    };
    // The genuine cookie works...
    assert_eq!(with_cookie(value.clone()).await.unwrap().status(), 200);
    // ...a tampered, invented or plaintext one is no session at all: back to WeChat sign-in.
    let mut tampered = value.clone().into_bytes();
    let mid = tampered.len() / 2;
    tampered[mid] = if tampered[mid] == b'A' { b'B' } else { b'A' };
    for forged in [
        String::from_utf8(tampered).unwrap(),
        "garbage".to_string(),
        format!("{{\"openid\":\"\\\"{alice}\\\"\"}}"),
        String::new(),
    ] {
        let response = with_cookie(forged.clone()).await.unwrap();
        assert_eq!(response.status(), StatusCode::FOUND, "{forged}");
        assert!(location(&response).contains("/connect/oauth2/authorize"));
    }
    // No session, with the openid offered every other way: still nothing.
    let response = bare
        .get(format!("{}/invite?openid={alice}", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FOUND);
    for image in ["qrcode.png", "poster.png"] {
        let response = bare
            .get(format!("{}/invite/{image}?openid={alice}", app.address))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{image}");
    }
}

#[tokio::test]
async fn someone_who_does_not_follow_is_asked_to_follow_first() {
    let (app, wechat) = spawn_app().await;
    let carol = openid("follow", 1);
    wechat.sim.add_user(&carol, "小卡", false);
    let client = sign_in(&app, &wechat, &carol, "snsapi_base").await;
    for _ in 0..2 {
        let (status, page) = get_text(&client, format!("{}/invite", app.address)).await;
        assert_eq!(status, 200);
        assert!(page.contains("请先关注公众号"), "{page}");
    }
    // WeChat was asked once; the answer is remembered.
    assert_eq!(wechat.sim.calls("user/info"), 1);
    let image = client
        .get(format!("{}/invite/qrcode.png", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(image.status(), StatusCode::FORBIDDEN);
    // One code was created: the follow-first page's channel code, shared by both visits; none
    // for the visitor.
    assert_eq!(wechat.sim.calls("qrcode/create"), 1);
    let own: i64 = sqlx::query_scalar("SELECT count(*) FROM invite_codes WHERE owner_openid = $1")
        .bind(&carol)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(own, 0);

    // Once they follow (the push arrives), the page is theirs.
    app.subscribe(&carol, None, chrono::Utc::now().timestamp())
        .await;
    let (_, page) = get_text(&client, format!("{}/invite", app.address)).await;
    assert!(page.contains("位好友已通过你关注"), "{page}");
}

#[tokio::test]
async fn a_follower_from_before_fission_is_looked_up_once() {
    let (app, wechat) = spawn_app().await;
    let dave = openid("olduser", 1);
    wechat.sim.add_user(&dave, "老戴", true);
    let client = sign_in(&app, &wechat, &dave, "snsapi_base").await;
    for _ in 0..3 {
        let (_, page) = get_text(&client, format!("{}/invite", app.address)).await;
        assert!(page.contains("位好友已通过你关注"), "{page}");
    }
    assert_eq!(wechat.sim.calls("user/info"), 1);
    let user = db::users::get(&app.pool, &fission::domain::OpenId::parse(&dave).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert!(user.subscribed && user.followed_since.is_some());
}

#[tokio::test]
async fn the_profile_scope_saves_nickname_and_avatar() {
    let (app, wechat) = spawn_app().await;
    let erin = openid("profile", 1);
    wechat.sim.add_user(&erin, "小艾<b>", true);
    let client = cookie_client();
    let start = client
        .get(format!("{}/invite/profile", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(
        query_param(&location(&start), "scope").as_deref(),
        Some("snsapi_userinfo")
    );
    drop(client);
    let client = sign_in(&app, &wechat, &erin, "snsapi_userinfo").await;
    assert_eq!(wechat.sim.calls("sns/userinfo"), 1);
    let user = db::users::get(&app.pool, &fission::domain::OpenId::parse(&erin).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(user.nickname.as_deref(), Some("小艾<b>"));
    assert!(user
        .avatar_url
        .as_deref()
        .is_some_and(|u| u.starts_with(&wechat.base)));
    // The nickname is shown escaped, and the "show my profile" button is gone.
    let (_, page) = get_text(&client, format!("{}/invite", app.address)).await;
    assert!(
        page.contains("小艾&#60;b&#62;") || page.contains("小艾&lt;b&gt;"),
        "{page}"
    );
    assert!(!page.contains("/invite/profile"));
}

pub fn decode_qr(image: &[u8]) -> Vec<String> {
    let luma = image::load_from_memory(image).unwrap().to_luma8();
    let mut prepared = rqrr::PreparedImage::prepare(luma);
    prepared
        .detect_grids()
        .into_iter()
        .filter_map(|g| g.decode().ok().map(|(_, content)| content))
        .collect()
}

/// With a subscription template, the page inside WeChat carries `wx.config` for the
/// `wx-open-subscribe` button, signed with one jsapi_ticket that every instance shares.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_subscription_button_is_signed_with_one_shared_jsapi_ticket() {
    let wechat = FakeWechat::start(100_000, None).await;
    let deployment = crate::helpers::Deployment::new(&wechat);
    let a = TestApp::spawn(&deployment).await;
    let b = TestApp::spawn(&deployment).await;
    sqlx::query(
        "UPDATE campaigns SET subscribe_template_id = 'sub_invite_progress',
                subscribe_fields = 'thing1={invitee}'",
    )
    .execute(&a.pool)
    .await
    .unwrap();
    let mut visits = Vec::new();
    for (n, app) in [&a, &b, &a, &b, &a, &b].into_iter().enumerate() {
        let user = openid("jsapi", n);
        wechat.sim.add_user(&user, "访客", true);
        visits.push((app, sign_in(app, &wechat, &user, "snsapi_base").await));
    }
    let pages = futures_util::future::join_all(visits.iter().map(|(app, client)| async move {
        let (status, page) = get_text(client, format!("{}/invite", app.address)).await;
        assert_eq!(status, StatusCode::OK);
        (app.address.clone(), page)
    }))
    .await;
    assert_eq!(
        wechat.sim.calls("ticket/getticket"),
        1,
        "one ticket for all"
    );
    let ticket = wechat.sim.jsapi_ticket().unwrap();
    for (address, page) in pages {
        assert!(
            page.contains(r#"<wx-open-subscribe id="subscribe" template="sub_invite_progress">"#)
        );
        let attr = |name: &str| {
            let start = page
                .find(&format!(r#"{name}=""#))
                .unwrap_or_else(|| panic!("{name} in {page}"))
                + name.len()
                + 2;
            page[start..start + page[start..].find('"').unwrap()].to_string()
        };
        assert_eq!(attr("data-app-id"), APPID);
        let expected = fission::wechat::jsapi::signature(
            &ticket,
            &attr("data-nonce"),
            attr("data-timestamp").parse().unwrap(),
            &format!("{address}/invite"),
        );
        assert_eq!(attr("data-signature"), expected);
    }
}
