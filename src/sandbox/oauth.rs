//! Web OAuth: the consent page (`/connect/oauth2/authorize`, where a person picks a test user),
//! the code exchange (`/sns/oauth2/access_token`), `/sns/userinfo`, and the avatars it links to.
//!
//! Like WeChat: codes are single-use and live 5 minutes; redirect_uri must be http(s) on the
//! account's authorised domain (the host of `public_base`); state may only be a-zA-Z0-9, at most
//! 128 bytes, as WeChat's documentation requires.

use actix_web::{http::header, web, HttpResponse};
use askama::Template;
use serde::Deserialize;
use serde_json::json;

use super::api::{require_get, Params};
use super::pages::{error_page, render};
use super::state::{
    random_id, random_openid, random_token, OAuthCode, State, UserToken, WxError, CODE_TTL,
    TOKEN_TTL,
};
use super::{encode_component, images, Simulator};

pub(super) fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/connect/oauth2/authorize")
            .route(web::get().to(authorize))
            .route(web::post().to(authorize_new_user)),
    )
    .service(
        web::resource("/sns/oauth2/access_token")
            .route(web::get().to(exchange_code))
            .default_service(web::to(require_get)),
    )
    .service(
        web::resource("/sns/userinfo")
            .route(web::get().to(userinfo))
            .default_service(web::to(require_get)),
    )
    .route("/avatar/{file}", web::get().to(avatar));
}

pub(super) fn mint_code(st: &mut State, openid: &str, scope: &str) -> String {
    let code = random_id(32);
    let issued_at = st.now();
    st.codes.insert(
        code.clone(),
        OAuthCode {
            openid: openid.to_owned(),
            scope: scope.to_owned(),
            issued_at,
            used: false,
        },
    );
    code
}

/// The authorize request, as the browser sends it.
#[derive(Deserialize)]
struct AuthorizeRequest {
    #[serde(default)]
    appid: String,
    #[serde(default)]
    redirect_uri: String,
    #[serde(default)]
    response_type: String,
    #[serde(default)]
    scope: String,
    #[serde(default)]
    state: String,
    /// Skips the page: approve as this user (scripted use).
    sandbox_openid: Option<String>,
    /// From the page's "new user" form.
    nickname: Option<String>,
}

#[derive(Template)]
#[template(path = "sandbox/authorize.html")]
struct AuthorizePage {
    title: &'static str,
    base: String,
    account_name: String,
    scope_label: &'static str,
    /// (nickname, openid, link that approves as that user)
    users: Vec<(String, String, String)>,
    appid: String,
    redirect_uri: String,
    scope: String,
    state: String,
}

/// The error WeChat's page would show, or None when the request is acceptable.
fn check(sim: &Simulator, req: &AuthorizeRequest) -> Option<String> {
    if req.appid != sim.config().appid {
        return Some("10016 appid错误".into());
    }
    if req.response_type != "code" {
        return Some("10004 response_type参数错误".into());
    }
    if !matches!(req.scope.as_str(), "snsapi_base" | "snsapi_userinfo") {
        return Some("10005 scope参数错误或没有scope权限".into());
    }
    if req.state.len() > 128 || !req.state.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Some("state参数错误：只能是 a-zA-Z0-9，最多128字节".into());
    }
    let Some(host) = http_host(&req.redirect_uri) else {
        return Some("10003 redirect_uri参数错误：必须是 http(s) 绝对地址".into());
    };
    let authorised = http_host(&sim.config().public_base).unwrap_or_default();
    if host != authorised {
        return Some(format!(
            "10003 redirect_uri域名与后台配置不一致（授权域名：{authorised}）"
        ));
    }
    None
}

/// The host (without port) of an absolute http(s) URL.
fn http_host(url: &str) -> Option<String> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host = match authority.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => authority,
    };
    (!host.is_empty() && !host.contains(char::is_whitespace) && !host.contains('@'))
        .then(|| host.to_ascii_lowercase())
}

/// redirect_uri with `code` and `state` appended, keeping its own query and fragment.
fn redirect_target(redirect_uri: &str, code: &str, state: &str) -> String {
    let (uri, fragment) = match redirect_uri.split_once('#') {
        Some((u, f)) => (u, format!("#{f}")),
        None => (redirect_uri, String::new()),
    };
    let separator = if uri.contains('?') { '&' } else { '?' };
    format!(
        "{uri}{separator}code={}&state={}{fragment}",
        encode_component(code),
        encode_component(state)
    )
}

fn approve(sim: &Simulator, req: &AuthorizeRequest, openid: &str) -> HttpResponse {
    let code = mint_code(&mut sim.state(), openid, &req.scope);
    HttpResponse::Found()
        .insert_header((
            header::LOCATION,
            redirect_target(&req.redirect_uri, &code, &req.state),
        ))
        .finish()
}

async fn authorize(sim: web::Data<Simulator>, req: web::Query<AuthorizeRequest>) -> HttpResponse {
    if let Some(problem) = check(&sim, &req) {
        return error_page(&sim, 400, "授权失败", &problem);
    }
    if let Some(openid) = req.sandbox_openid.as_deref() {
        if !sim.state().users.contains_key(openid) {
            return error_page(&sim, 400, "授权失败", "sandbox_openid 不是已有的测试用户");
        }
        return approve(&sim, &req, openid);
    }
    let users = sim
        .users()
        .into_iter()
        .map(|u| {
            let link = sim.link(&format!(
                "/connect/oauth2/authorize?appid={}&redirect_uri={}&response_type=code&scope={}&state={}&sandbox_openid={}",
                encode_component(&req.appid),
                encode_component(&req.redirect_uri),
                encode_component(&req.scope),
                encode_component(&req.state),
                encode_component(&u.openid),
            ));
            (u.nickname, u.openid, link)
        })
        .collect();
    let page = AuthorizePage {
        title: "授权登录",
        base: sim.link(""),
        account_name: sim.config().account_name.clone(),
        scope_label: if req.scope == "snsapi_userinfo" {
            "获取你的昵称、头像"
        } else {
            "获取你的身份标识（openid）"
        },
        users,
        appid: req.appid.clone(),
        redirect_uri: req.redirect_uri.clone(),
        scope: req.scope.clone(),
        state: req.state.clone(),
    };
    render(&page, 200)
}

/// The page's "new test user" form: creates the user, then approves as them.
async fn authorize_new_user(
    sim: web::Data<Simulator>,
    form: web::Form<AuthorizeRequest>,
) -> HttpResponse {
    if let Some(problem) = check(&sim, &form) {
        return error_page(&sim, 400, "授权失败", &problem);
    }
    let nickname = form.nickname.as_deref().map(str::trim).unwrap_or("");
    if nickname.is_empty() {
        return error_page(&sim, 400, "授权失败", "请填写昵称");
    }
    let openid = random_openid();
    sim.add_user(&openid, nickname, false);
    approve(&sim, &form, &openid)
}

async fn exchange_code(sim: web::Data<Simulator>, q: Params) -> Result<HttpResponse, WxError> {
    sim.state().count("oauth2/access_token");
    sim.lag().await;
    let mut st = sim.state();
    let param = |name: &str| q.get(name).map(String::as_str).unwrap_or("");
    if param("appid") != sim.config().appid {
        return Err(WxError::new(40013));
    }
    if param("secret") != sim.config().secret {
        return Err(WxError::new(40125));
    }
    if param("code").is_empty() {
        return Err(WxError::new(41008));
    }
    if param("grant_type") != "authorization_code" {
        return Err(WxError::new(40002));
    }
    st.take_fault("oauth2/access_token")?;
    let now = st.now();
    let code = st.codes.get_mut(param("code")).ok_or(WxError::new(40029))?;
    if code.used {
        return Err(WxError::new(40163));
    }
    if now >= code.issued_at + CODE_TTL {
        return Err(WxError::new(40029));
    }
    code.used = true;
    let (openid, scope) = (code.openid.clone(), code.scope.clone());
    let access_token = random_token();
    st.user_tokens.insert(
        access_token.clone(),
        UserToken {
            openid: openid.clone(),
            scope: scope.clone(),
            expires_at: now + TOKEN_TTL,
        },
    );
    Ok(HttpResponse::Ok().json(json!({
        "access_token": access_token,
        "expires_in": TOKEN_TTL,
        "refresh_token": random_token(),
        "openid": openid,
        "scope": scope,
    })))
}

async fn userinfo(sim: web::Data<Simulator>, q: Params) -> Result<HttpResponse, WxError> {
    sim.state().count("sns/userinfo");
    sim.lag().await;
    let mut st = sim.state();
    let token = q
        .get("access_token")
        .filter(|t| !t.is_empty())
        .ok_or(WxError::new(41001))?;
    // A global access_token is not a user token: unknown here, as at WeChat.
    let grant = st.user_tokens.get(token).ok_or(WxError::new(40001))?;
    if st.now() >= grant.expires_at {
        return Err(WxError::new(42001));
    }
    let openid = q
        .get("openid")
        .filter(|o| !o.is_empty())
        .ok_or(WxError::new(41009))?;
    if *openid != grant.openid {
        return Err(WxError::new(40003));
    }
    if grant.scope != "snsapi_userinfo" {
        return Err(WxError::new(48001));
    }
    st.take_fault("sns/userinfo")?;
    let nickname = st
        .users
        .get(openid)
        .map(|u| u.nickname.clone())
        .unwrap_or_default();
    Ok(HttpResponse::Ok().json(json!({
        "openid": openid,
        "nickname": nickname,
        "sex": 0,
        "province": "",
        "city": "",
        "country": "",
        "headimgurl": sim.absolute(&format!("/avatar/{}.png", encode_component(openid))),
        "privilege": [],
    })))
}

async fn avatar(sim: web::Data<Simulator>, file: web::Path<String>) -> HttpResponse {
    let known = file
        .strip_suffix(".png")
        .filter(|openid| sim.state().users.contains_key(*openid));
    let Some(openid) = known else {
        return HttpResponse::NotFound().finish();
    };
    match images::avatar_png(openid) {
        Ok(png) => HttpResponse::Ok()
            .content_type("image/png")
            .insert_header((header::CACHE_CONTROL, "max-age=86400"))
            .body(png),
        Err(e) => {
            tracing::error!(error = %e, "sandbox: cannot draw avatar");
            HttpResponse::InternalServerError().finish()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_of_redirect_uris() {
        assert_eq!(
            http_host("http://127.0.0.1:8080/invite/oauth").as_deref(),
            Some("127.0.0.1")
        );
        assert_eq!(
            http_host("https://Fission.example?x=1").as_deref(),
            Some("fission.example")
        );
        assert_eq!(http_host("/invite/oauth"), None);
        assert_eq!(http_host("javascript:alert(1)"), None);
        assert_eq!(http_host("http://evil.example@127.0.0.1/"), None);
        assert_eq!(http_host("http:///x"), None);
    }

    #[test]
    fn code_and_state_are_appended() {
        assert_eq!(
            redirect_target("http://h/cb", "C", "s1"),
            "http://h/cb?code=C&state=s1"
        );
        assert_eq!(
            redirect_target("http://h/cb?a=1#top", "C", ""),
            "http://h/cb?a=1&code=C&state=#top"
        );
    }
}
