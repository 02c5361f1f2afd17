//! Parametric QR codes: `POST /cgi-bin/qrcode/create` and `GET /cgi-bin/showqrcode`.
//!
//! Validation is as strict as WeChat's documentation: anything off in `action_info` is 40053.
//! Permanent codes are idempotent per scene and capped by the account's quota (45029).
//! A ticket's QR code encodes `{public_base}/scan?ticket=…`, the simulator's "follow" page.

use actix_web::{web, HttpResponse};
use serde_json::{json, Value};

use super::api::{require_get, require_post, Params};
use super::images;
use super::state::{random_ticket, Scene, Ticket, WxError};
use super::{encode_component, Simulator};

/// Temporary codes without `expire_seconds` live 30 s, as one of WeChat's pages documents.
const DEFAULT_EXPIRE: i64 = 30;
const MAX_EXPIRE: i64 = 2_592_000;
const MAX_PERMANENT_SCENE_ID: i64 = 100_000;
const MAX_SCENE_STR_CHARS: usize = 64;

pub(super) fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/cgi-bin/qrcode/create")
            .route(web::post().to(create))
            .default_service(web::to(require_post)),
    )
    .service(
        web::resource("/cgi-bin/showqrcode")
            .route(web::get().to(show))
            .default_service(web::to(require_get)),
    );
}

#[derive(Debug, PartialEq, Eq)]
pub(super) struct QrRequest {
    pub scene: Scene,
    pub permanent: bool,
    /// None for permanent codes.
    pub expire_seconds: Option<i64>,
}

/// Reads a qrcode/create body the way WeChat does; every defect is 40053.
pub(super) fn parse_request(body: &Value) -> Result<QrRequest, WxError> {
    let invalid = || WxError::new(40053);
    let action = body
        .get("action_name")
        .and_then(Value::as_str)
        .ok_or_else(invalid)?;
    let scene = body
        .get("action_info")
        .and_then(|info| info.get("scene"))
        .filter(|s| s.is_object())
        .ok_or_else(invalid)?;
    // `as_i64` is None for strings and floats: "123" and 1.5 are not scene ids.
    let scene_id = |range: std::ops::RangeInclusive<i64>| {
        scene
            .get("scene_id")
            .and_then(Value::as_i64)
            .filter(|id| *id != 0 && range.contains(id))
            .map(Scene::Id)
            .ok_or_else(invalid)
    };
    let scene_str = || {
        scene
            .get("scene_str")
            .and_then(Value::as_str)
            .filter(|s| (1..=MAX_SCENE_STR_CHARS).contains(&s.chars().count()))
            .map(|s| Scene::Str(s.to_owned()))
            .ok_or_else(invalid)
    };
    let (scene, permanent) = match action {
        "QR_SCENE" => (scene_id(i64::from(i32::MIN)..=i64::from(i32::MAX))?, false),
        "QR_STR_SCENE" => (scene_str()?, false),
        "QR_LIMIT_SCENE" => (scene_id(1..=MAX_PERMANENT_SCENE_ID)?, true),
        "QR_LIMIT_STR_SCENE" => (scene_str()?, true),
        _ => return Err(invalid()),
    };
    let expire_seconds = if permanent {
        None
    } else {
        match body.get("expire_seconds") {
            None | Some(Value::Null) => Some(DEFAULT_EXPIRE),
            Some(v) => {
                let secs = v.as_i64().filter(|s| *s > 0).ok_or_else(invalid)?;
                Some(secs.min(MAX_EXPIRE))
            }
        }
    };
    Ok(QrRequest {
        scene,
        permanent,
        expire_seconds,
    })
}

async fn create(
    sim: web::Data<Simulator>,
    q: Params,
    body: web::Bytes,
) -> Result<HttpResponse, WxError> {
    sim.gate("qrcode/create", q.get("access_token").map(String::as_str))?;
    sim.lag().await;
    let body: Value = serde_json::from_slice(&body).map_err(|_| WxError::new(47001))?;
    let req = parse_request(&body)?;

    let mut st = sim.state();
    if req.permanent {
        if let Some(existing) = st.permanent_tickets.get(&req.scene).cloned() {
            let url = st.tickets.get(&existing).map(|t| t.url.clone());
            st.qrcode_requests.push(body);
            return Ok(HttpResponse::Ok().json(json!({ "ticket": existing, "url": url })));
        }
        if st.permanent_tickets.len() >= st.permanent_quota as usize {
            return Err(WxError::new(45029));
        }
    }
    let ticket = loop {
        let candidate = random_ticket();
        if !st.tickets.contains_key(&candidate) {
            break candidate;
        }
    };
    let url = sim.absolute(&format!("/scan?ticket={}", encode_component(&ticket)));
    let expires_at = req.expire_seconds.map(|secs| st.now() + secs);
    if req.permanent {
        st.permanent_tickets
            .insert(req.scene.clone(), ticket.clone());
    }
    st.tickets.insert(
        ticket.clone(),
        Ticket {
            scene: req.scene,
            permanent: req.permanent,
            expires_at,
            url: url.clone(),
        },
    );
    st.qrcode_requests.push(body);
    let reply = match req.expire_seconds {
        Some(secs) => json!({ "ticket": ticket, "expire_seconds": secs, "url": url }),
        None => json!({ "ticket": ticket, "url": url }),
    };
    Ok(HttpResponse::Ok().json(reply))
}

/// No token needed. `Query` percent-decodes exactly once, so a ticket sent unencoded ('+'
/// becomes a space) or encoded twice ("%252B") is not found: 404, like WeChat.
async fn show(sim: web::Data<Simulator>, q: Params) -> HttpResponse {
    sim.lag().await;
    let url = {
        let mut st = sim.state();
        st.count("showqrcode");
        if let Err(e) = st.take_fault("showqrcode") {
            return actix_web::ResponseError::error_response(&e);
        }
        match q.get("ticket").and_then(|t| st.live_ticket(t)) {
            Some(ticket) => ticket.url.clone(),
            None => return HttpResponse::NotFound().body("ticket not found"),
        }
    };
    match images::qr_png(&url) {
        Ok(png) => HttpResponse::Ok().content_type("image/png").body(png),
        Err(e) => {
            tracing::error!(error = %e, "sandbox: cannot render QR code");
            HttpResponse::InternalServerError().finish()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::spawn;
    use super::*;

    fn scene(action: &str, scene: Value) -> Value {
        json!({"action_name": action, "action_info": {"scene": scene}, "expire_seconds": 600})
    }

    #[test]
    fn valid_requests_parse() {
        let ok = |v: Value| parse_request(&v).unwrap();
        assert_eq!(
            ok(scene("QR_SCENE", json!({"scene_id": -5}))).scene,
            Scene::Id(-5)
        );
        assert_eq!(
            ok(scene("QR_STR_SCENE", json!({"scene_str": "a".repeat(64)}))).expire_seconds,
            Some(600)
        );
        let limit = ok(scene("QR_LIMIT_SCENE", json!({"scene_id": 100000})));
        assert!(limit.permanent && limit.expire_seconds.is_none());
        assert_eq!(
            ok(scene("QR_LIMIT_STR_SCENE", json!({"scene_str": "邀请"}))).scene,
            Scene::Str("邀请".into())
        );
        let no_expiry = json!({"action_name":"QR_SCENE","action_info":{"scene":{"scene_id":1}}});
        assert_eq!(ok(no_expiry).expire_seconds, Some(30));
        let long = json!({"action_name":"QR_SCENE","action_info":{"scene":{"scene_id":1}},"expire_seconds":9_999_999});
        assert_eq!(ok(long).expire_seconds, Some(2_592_000));
    }

    #[test]
    fn invalid_requests_are_40053() {
        let cases = [
            scene("QR_NOPE", json!({"scene_id": 1})),
            json!({"action_info": {"scene": {"scene_id": 1}}}),
            json!({"action_name": "QR_SCENE"}),
            json!({"action_name": "QR_SCENE", "action_info": {}}),
            scene("QR_SCENE", json!({"scene_id": 0})),
            scene("QR_SCENE", json!({"scene_id": "12"})),
            scene("QR_SCENE", json!({"scene_id": 1.5})),
            scene("QR_SCENE", json!({"scene_id": 4_294_967_296_i64})),
            scene("QR_SCENE", json!({"scene_str": "x"})),
            scene("QR_STR_SCENE", json!({"scene_str": ""})),
            scene("QR_STR_SCENE", json!({"scene_str": "a".repeat(65)})),
            scene("QR_STR_SCENE", json!({"scene_str": 12})),
            scene("QR_LIMIT_SCENE", json!({"scene_id": 0})),
            scene("QR_LIMIT_SCENE", json!({"scene_id": 100_001})),
            scene("QR_LIMIT_SCENE", json!({"scene_id": -1})),
            scene("QR_LIMIT_SCENE", json!({"scene_str": "1"})),
            scene("QR_LIMIT_STR_SCENE", json!({"scene_str": "a".repeat(65)})),
            scene("QR_LIMIT_STR_SCENE", json!({"scene_id": 3})),
            json!({"action_name":"QR_SCENE","action_info":{"scene":{"scene_id":1}},"expire_seconds":"60"}),
            json!({"action_name":"QR_SCENE","action_info":{"scene":{"scene_id":1}},"expire_seconds":0}),
        ];
        for case in cases {
            assert_eq!(
                parse_request(&case).map_err(|e| e.errcode),
                Err(40053),
                "{case}"
            );
        }
    }

    #[actix_web::test]
    async fn create_over_http_validates_and_records() {
        let t = spawn().await;
        let token = t.access_token().await;
        let uri = format!("/cgi-bin/qrcode/create?access_token={token}");
        let bad = t
            .post_json(
                &uri,
                &scene("QR_LIMIT_STR_SCENE", json!({"scene_str": "a".repeat(65)})),
            )
            .await;
        assert_eq!(bad["errcode"], 40053);
        let temp = t
            .post_json(&uri, &scene("QR_STR_SCENE", json!({"scene_str": "abc"})))
            .await;
        assert_eq!(temp["expire_seconds"], 600);
        let ticket = temp["ticket"].as_str().unwrap();
        assert!(ticket.contains('+') && ticket.contains('/') && ticket.ends_with('='));
        let expected_url = format!("{}/scan?ticket={}", t.base, encode_component(ticket));
        assert_eq!(temp["url"], json!(expected_url));
        assert_eq!(t.sim.qrcode_requests().len(), 1);
        assert_eq!(t.sim.calls("qrcode/create"), 2);
        let no_token = t
            .post_json(
                "/cgi-bin/qrcode/create",
                &scene("QR_SCENE", json!({"scene_id": 1})),
            )
            .await;
        assert_eq!(no_token["errcode"], 41001);
    }

    #[actix_web::test]
    async fn permanent_codes_are_idempotent_and_capped() {
        let t = spawn().await;
        t.sim.set_permanent_quota(2);
        let limit = |id: i64| json!({"action_name":"QR_LIMIT_SCENE","action_info":{"scene":{"scene_id":id}}});
        let a = t.create_qr(limit(1)).await;
        assert!(a.get("expire_seconds").is_none());
        assert_eq!(t.create_qr(limit(1)).await["ticket"], a["ticket"]);
        assert!(t.create_qr(limit(2)).await["ticket"].is_string());
        assert_eq!(t.create_qr(limit(3)).await["errcode"], 45029);
        // Scenes that already exist are still served past the quota.
        assert_eq!(t.create_qr(limit(1)).await["ticket"], a["ticket"]);
        assert_eq!(t.sim.qrcode_requests().len(), 4);
    }

    #[actix_web::test]
    async fn showqrcode_needs_the_ticket_encoded_exactly_once() {
        let t = spawn().await;
        let ticket = t.permanent_ticket(7).await;
        let once = t
            .get(&format!(
                "/cgi-bin/showqrcode?ticket={}",
                encode_component(&ticket)
            ))
            .await;
        assert_eq!(once.status(), 200);
        assert_eq!(once.headers()["content-type"], "image/png");
        let png = once.bytes().await.unwrap();
        assert!(image::load_from_memory(&png).is_ok());

        let twice = encode_component(&encode_component(&ticket));
        assert_eq!(
            t.get(&format!("/cgi-bin/showqrcode?ticket={twice}"))
                .await
                .status(),
            404
        );
        assert_eq!(
            t.get(&format!("/cgi-bin/showqrcode?ticket={ticket}"))
                .await
                .status(),
            404
        );
        assert_eq!(t.get("/cgi-bin/showqrcode?ticket=nope").await.status(), 404);
        assert_eq!(t.sim.calls("showqrcode"), 4);
    }

    #[actix_web::test]
    async fn temporary_tickets_expire() {
        let t = spawn().await;
        let reply = t
            .create_qr(json!({"action_name":"QR_SCENE","action_info":{"scene":{"scene_id":9}},"expire_seconds":60}))
            .await;
        let uri = format!(
            "/cgi-bin/showqrcode?ticket={}",
            encode_component(reply["ticket"].as_str().unwrap())
        );
        assert_eq!(t.get(&uri).await.status(), 200);
        t.sim.advance_clock(61);
        assert_eq!(t.get(&uri).await.status(), 404);
    }
}
