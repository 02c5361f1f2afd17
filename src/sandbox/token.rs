//! `GET /cgi-bin/token` and `POST /cgi-bin/stable_token`.
//!
//! `token` issues a new token on every call and the previous one keeps working `TOKEN_GRACE`
//! seconds. `stable_token` hands every caller the same token until it nears expiry, which is what
//! lets several instances share one; `force_refresh` kills the previous token at once and is
//! limited to 20 a day, 30 s apart. The two are isolated from each other, as WeChat documents.

use actix_web::{web, HttpResponse};
use serde_json::{json, Value};

use super::api::{require_get, require_post, Params};
use super::state::{WxError, TOKEN_GRACE};
use super::{SimConfig, Simulator};

const FORCE_REFRESH_PER_DAY: usize = 20;
const FORCE_REFRESH_GAP: i64 = 30;

pub(super) fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/cgi-bin/token")
            .route(web::get().to(token))
            .default_service(web::to(require_get)),
    )
    .service(
        web::resource("/cgi-bin/stable_token")
            .route(web::post().to(stable_token))
            .default_service(web::to(require_post)),
    );
}

fn check_app(
    cfg: &SimConfig,
    grant_type: Option<&str>,
    appid: Option<&str>,
    secret: Option<&str>,
) -> Result<(), WxError> {
    if grant_type != Some("client_credential") {
        return Err(WxError::new(40002));
    }
    if appid != Some(cfg.appid.as_str()) {
        return Err(WxError::new(40013));
    }
    if secret != Some(cfg.secret.as_str()) {
        return Err(WxError::new(40125));
    }
    Ok(())
}

async fn token(sim: web::Data<Simulator>, q: Params) -> Result<HttpResponse, WxError> {
    sim.state().count("token");
    sim.lag().await;
    let mut st = sim.state();
    check_app(
        sim.config(),
        q.get("grant_type").map(String::as_str),
        q.get("appid").map(String::as_str),
        q.get("secret").map(String::as_str),
    )?;
    st.take_fault("token")?;
    let fresh = st.issue_token();
    let now = st.now();
    if let Some(previous) = st.latest_token.replace(fresh.clone()) {
        if let Some(t) = st.tokens.get_mut(&previous) {
            t.superseded_at.get_or_insert(now);
        }
    }
    Ok(HttpResponse::Ok().json(json!({ "access_token": fresh, "expires_in": 7200 })))
}

async fn stable_token(
    sim: web::Data<Simulator>,
    body: web::Bytes,
) -> Result<HttpResponse, WxError> {
    sim.state().count("stable_token");
    sim.lag().await;
    let mut st = sim.state();
    let req: Value = serde_json::from_slice(&body).map_err(|_| WxError::new(47001))?;
    check_app(
        sim.config(),
        req.get("grant_type").and_then(Value::as_str),
        req.get("appid").and_then(Value::as_str),
        req.get("secret").and_then(Value::as_str),
    )?;
    let force = match req.get("force_refresh") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(WxError::new(47001)),
    };
    st.take_fault("stable_token")?;

    let now = st.now();
    if force {
        st.force_refreshes.retain(|at| now - at < 24 * 3600);
        if st.force_refreshes.len() >= FORCE_REFRESH_PER_DAY {
            return Err(WxError::new(45009));
        }
        if st
            .force_refreshes
            .last()
            .is_some_and(|at| now - at < FORCE_REFRESH_GAP)
        {
            return Err(WxError::new(45011));
        }
        st.force_refreshes.push(now);
        // Unlike /cgi-bin/token, a forced refresh ends the previous stable token at once.
        if let Some(previous) = st.stable_token.take() {
            if let Some(t) = st.tokens.get_mut(&previous) {
                t.invalidated = true;
            }
        }
    } else if let Some(current) = st.stable_token.clone() {
        if let Some(left) = st
            .token_remaining(&current)
            .filter(|left| *left > TOKEN_GRACE)
        {
            return Ok(
                HttpResponse::Ok().json(json!({ "access_token": current, "expires_in": left }))
            );
        }
    }
    // A token replaced because it neared expiry simply runs out on its own.
    let fresh = st.issue_token();
    st.stable_token = Some(fresh.clone());
    Ok(HttpResponse::Ok().json(json!({ "access_token": fresh, "expires_in": 7200 })))
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{spawn, TEST_APPID, TEST_SECRET};
    use serde_json::json;

    fn token_uri(appid: &str, secret: &str) -> String {
        format!("/cgi-bin/token?grant_type=client_credential&appid={appid}&secret={secret}")
    }

    fn users_uri(token: &serde_json::Value) -> String {
        format!(
            "/cgi-bin/user/get?access_token={}",
            token.as_str().unwrap_or_default()
        )
    }

    #[actix_web::test]
    async fn token_checks_credentials() {
        let t = spawn().await;
        let bad_grant =
            format!("/cgi-bin/token?grant_type=x&appid={TEST_APPID}&secret={TEST_SECRET}");
        assert_eq!(t.get_json(&bad_grant).await["errcode"], 40002);
        assert_eq!(
            t.get_json(&token_uri("wxnope", TEST_SECRET)).await["errcode"],
            40013
        );
        assert_eq!(
            t.get_json(&token_uri(TEST_APPID, "nope")).await["errcode"],
            40125
        );
        let ok = t.get_json(&token_uri(TEST_APPID, TEST_SECRET)).await;
        assert_eq!(ok["expires_in"], 7200);
        assert!(ok["access_token"].as_str().is_some_and(|t| t.len() > 100));
        assert_eq!(t.sim.calls("token"), 4);
    }

    #[actix_web::test]
    async fn previous_token_works_300_more_seconds() {
        let t = spawn().await;
        let first = t.get_json(&token_uri(TEST_APPID, TEST_SECRET)).await["access_token"].clone();
        let second = t.get_json(&token_uri(TEST_APPID, TEST_SECRET)).await["access_token"].clone();
        assert_ne!(first, second);
        assert_eq!(t.get_json(&users_uri(&first)).await["total"], 0);
        t.sim.advance_clock(299);
        assert_eq!(t.get_json(&users_uri(&first)).await["total"], 0);
        t.sim.advance_clock(2);
        assert_eq!(t.get_json(&users_uri(&first)).await["errcode"], 40001);
        assert_eq!(t.get_json(&users_uri(&second)).await["total"], 0);
        t.sim.advance_clock(7200);
        assert_eq!(t.get_json(&users_uri(&second)).await["errcode"], 42001);
        assert_eq!(t.get_json("/cgi-bin/user/get").await["errcode"], 41001);
        assert_eq!(
            t.get_json(&users_uri(&json!("made-up"))).await["errcode"],
            40001
        );
    }

    #[actix_web::test]
    async fn token_requires_get() {
        let t = spawn().await;
        let body = t
            .post_json(&token_uri(TEST_APPID, TEST_SECRET), &json!({}))
            .await;
        assert_eq!(body["errcode"], 43001);
    }

    #[actix_web::test]
    async fn stable_token_is_shared_until_invalidated() {
        let t = spawn().await;
        let req = json!({"grant_type":"client_credential","appid":TEST_APPID,"secret":TEST_SECRET});
        let a = t.post_json("/cgi-bin/stable_token", &req).await;
        let b = t.post_json("/cgi-bin/stable_token", &req).await;
        assert_eq!(a["access_token"], b["access_token"]);
        assert_eq!(t.sim.calls("stable_token"), 2);
        assert_eq!(t.sim.calls("token"), 0);

        t.sim.invalidate_tokens();
        let c = t.post_json("/cgi-bin/stable_token", &req).await;
        assert_ne!(a["access_token"], c["access_token"]);
        assert_eq!(
            t.get_json(&users_uri(&a["access_token"])).await["errcode"],
            40001
        );

        // Near expiry a new one is handed out; the old one runs out on its own.
        t.sim.advance_clock(7200 - 200);
        let d = t.post_json("/cgi-bin/stable_token", &req).await;
        assert_ne!(c["access_token"], d["access_token"]);
        assert_eq!(d["expires_in"], 7200);
        assert_eq!(t.get_json(&users_uri(&c["access_token"])).await["total"], 0);

        let wrong = json!({"grant_type":"client_credential","appid":TEST_APPID,"secret":"x"});
        assert_eq!(
            t.post_json("/cgi-bin/stable_token", &wrong).await["errcode"],
            40125
        );
        assert_eq!(t.get_json("/cgi-bin/stable_token").await["errcode"], 43002);
    }

    #[actix_web::test]
    async fn force_refresh_is_rate_limited_and_kills_the_old_token() {
        let t = spawn().await;
        let mut req =
            json!({"grant_type":"client_credential","appid":TEST_APPID,"secret":TEST_SECRET});
        let a = t.post_json("/cgi-bin/stable_token", &req).await;
        req["force_refresh"] = json!(true);
        let b = t.post_json("/cgi-bin/stable_token", &req).await;
        assert_ne!(a["access_token"], b["access_token"]);
        assert_eq!(
            t.get_json(&users_uri(&a["access_token"])).await["errcode"],
            40001
        );
        assert_eq!(
            t.post_json("/cgi-bin/stable_token", &req).await["errcode"],
            45011
        );
        for _ in 0..19 {
            t.sim.advance_clock(31);
            assert!(t.post_json("/cgi-bin/stable_token", &req).await["access_token"].is_string());
        }
        t.sim.advance_clock(31);
        assert_eq!(
            t.post_json("/cgi-bin/stable_token", &req).await["errcode"],
            45009
        );
    }

    #[actix_web::test]
    async fn injected_faults_come_after_credential_checks() {
        let t = spawn().await;
        t.sim.fail_next("token", -1, 1);
        assert_eq!(
            t.get_json(&token_uri(TEST_APPID, "bad")).await["errcode"],
            40125
        );
        assert_eq!(
            t.get_json(&token_uri(TEST_APPID, TEST_SECRET)).await["errcode"],
            -1
        );
        assert!(t.get_json(&token_uri(TEST_APPID, TEST_SECRET)).await["access_token"].is_string());
    }
}
