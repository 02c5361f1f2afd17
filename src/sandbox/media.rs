//! Temporary media: `POST /cgi-bin/media/upload?type=image` (multipart, part `media`) and
//! `GET /media/{media_id}`, the simulator's own route the inbox pages show images from.
//!
//! Only `image` and `thumb` are simulated; the bytes must really be PNG/JPEG/GIF (JPEG for
//! thumb), because WeChat checks and a client that uploads, say, an error page should fail here.
//! The multipart body is parsed here (one small function) rather than pulling in actix-multipart.

use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::StreamExt as _;
use serde_json::json;

use super::api::{require_post, Params};
use super::state::{random_id, Media, WxError};
use super::Simulator;

const IMAGE_MAX: usize = 10 * 1024 * 1024;
const THUMB_MAX: usize = 64 * 1024;
/// Room for the multipart framing around the largest allowed file.
const BODY_MAX: usize = IMAGE_MAX + 64 * 1024;

pub(super) fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/cgi-bin/media/upload")
            .route(web::post().to(upload))
            .default_service(web::to(require_post)),
    )
    .route("/media/{media_id}", web::get().to(show));
}

async fn upload(
    sim: web::Data<Simulator>,
    q: Params,
    req: HttpRequest,
    mut payload: web::Payload,
) -> Result<HttpResponse, WxError> {
    sim.gate("media/upload", q.get("access_token").map(String::as_str))?;
    sim.lag().await;
    let kind = q.get("type").map(String::as_str).unwrap_or("");
    let max = match kind {
        "image" => IMAGE_MAX,
        "thumb" => THUMB_MAX,
        _ => return Err(WxError::new(40004)),
    };
    let mut body = Vec::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|_| WxError::new(41005))?;
        if body.len() + chunk.len() > BODY_MAX {
            return Err(WxError::new(40009));
        }
        body.extend_from_slice(&chunk);
    }
    let content_type = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let file = form_part(content_type, &body, "media").ok_or(WxError::new(41005))?;
    if file.is_empty() {
        return Err(WxError::new(41005));
    }
    if file.len() > max {
        return Err(WxError::new(40009));
    }
    let mime = sniff_image(file)
        .filter(|m| kind == "image" || *m == "image/jpeg")
        .ok_or(WxError::new(40005))?;

    let mut st = sim.state();
    let media_id = random_id(64);
    let created_at = st.now();
    st.media.insert(
        media_id.clone(),
        Media {
            bytes: file.to_vec(),
            content_type: mime,
            created_at,
        },
    );
    Ok(HttpResponse::Ok()
        .json(json!({ "type": kind, "media_id": media_id, "created_at": created_at })))
}

async fn show(sim: web::Data<Simulator>, path: web::Path<String>) -> HttpResponse {
    let st = sim.state();
    match st.live_media(&path) {
        Some(m) => HttpResponse::Ok()
            .content_type(m.content_type)
            .body(m.bytes.clone()),
        None => HttpResponse::NotFound().body("media not found or expired"),
    }
}

fn sniff_image(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("image/jpeg")
    } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        Some("image/gif")
    } else {
        None
    }
}

/// The content of the `multipart/form-data` part called `name`, if the body has one.
fn form_part<'a>(content_type: &str, body: &'a [u8], name: &str) -> Option<&'a [u8]> {
    let (mime, params) = content_type.split_once(';')?;
    if !mime.trim().eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    let boundary = params.split(';').find_map(|p| {
        let (k, v) = p.trim().split_once('=')?;
        k.eq_ignore_ascii_case("boundary")
            .then(|| v.trim_matches('"').to_owned())
    })?;
    let delimiter = format!("--{boundary}").into_bytes();
    let closing = [b"\r\n".as_slice(), &delimiter].concat();

    let mut pos = find(body, &delimiter, 0)? + delimiter.len();
    // Each part: CRLF, headers, blank line, content, CRLF--boundary. "--" after it ends the body.
    while body.get(pos..pos + 2) == Some(b"\r\n") {
        let headers_start = pos + 2;
        let headers_end = find(body, b"\r\n\r\n", headers_start)?;
        let content_start = headers_end + 4;
        let content_end = find(body, &closing, content_start)?;
        let headers = std::str::from_utf8(&body[headers_start..headers_end]).ok()?;
        if part_name(headers) == Some(name) {
            return Some(&body[content_start..content_end]);
        }
        pos = content_end + closing.len();
    }
    None
}

/// The `name` of a part, from its `Content-Disposition: form-data; name="…"` header.
fn part_name(headers: &str) -> Option<&str> {
    headers.split("\r\n").find_map(|line| {
        let (key, value) = line.split_once(':')?;
        if !key.trim().eq_ignore_ascii_case("content-disposition") {
            return None;
        }
        value.split(';').find_map(|p| {
            let (k, v) = p.trim().split_once('=')?;
            (k == "name").then(|| v.trim_matches('"'))
        })
    })
}

fn find(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    haystack
        .get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|i| i + from)
}

#[cfg(test)]
mod tests {
    use super::super::test_support::spawn;
    use super::*;

    pub(crate) fn multipart(boundary: &str, parts: &[(&str, &[u8])]) -> Vec<u8> {
        let mut body = Vec::new();
        for (name, content) in parts {
            body.extend_from_slice(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{name}.png\"\r\nContent-Type: image/png\r\n\r\n").as_bytes());
            body.extend_from_slice(content);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
        body
    }

    #[test]
    fn finds_the_named_part() {
        let body = multipart(
            "XyZ",
            &[
                ("other", b"aaa"),
                ("media", b"\x89PNG\r\n\x1a\nrest\r\n--not"),
            ],
        );
        let ct = "multipart/form-data; boundary=\"XyZ\"";
        assert_eq!(
            form_part(ct, &body, "media"),
            Some(&b"\x89PNG\r\n\x1a\nrest\r\n--not"[..])
        );
        assert_eq!(form_part(ct, &body, "missing"), None);
        assert_eq!(form_part("application/json", &body, "media"), None);
        assert_eq!(form_part(ct, b"garbage", "media"), None);
    }

    #[actix_web::test]
    async fn upload_then_send_image_then_expire() {
        let t = spawn().await;
        t.sim.add_user("oA", "阿甲", true);
        let token = t.access_token().await;
        let png = super::super::images::avatar_png("oA").unwrap();
        let upload = |kind: &str, body: Vec<u8>| {
            t.http
                .post(t.url(&format!(
                    "/cgi-bin/media/upload?access_token={token}&type={kind}"
                )))
                .header("content-type", "multipart/form-data; boundary=b0undary")
                .body(body)
                .send()
        };
        let reply: serde_json::Value = upload("image", multipart("b0undary", &[("media", &png)]))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(reply["type"], "image");
        let media_id = reply["media_id"].as_str().unwrap().to_owned();
        let not_image: serde_json::Value =
            upload("image", multipart("b0undary", &[("media", b"<html>")]))
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
        assert_eq!(not_image["errcode"], 40005);
        let wrong_name: serde_json::Value =
            upload("image", multipart("b0undary", &[("file", &png)]))
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
        assert_eq!(wrong_name["errcode"], 41005);
        let voice: serde_json::Value = upload("voice", multipart("b0undary", &[("media", &png)]))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(voice["errcode"], 40004);

        assert_eq!(
            t.get(&format!("/media/{media_id}"))
                .await
                .bytes()
                .await
                .unwrap()
                .as_ref(),
            png.as_slice()
        );
        let send = format!("/cgi-bin/message/custom/send?access_token={token}");
        let image = json!({"touser": "oA", "msgtype": "image", "image": {"media_id": media_id}});
        assert_eq!(t.post_json(&send, &image).await["errcode"], 0);
        t.sim.advance_clock(3 * 24 * 3600);
        t.sim.add_user("oA", "阿甲", false);
        t.sim.add_user("oA", "阿甲", true);
        let token = t.access_token().await;
        let send = format!("/cgi-bin/message/custom/send?access_token={token}");
        assert_eq!(t.post_json(&send, &image).await["errcode"], 40007);
        assert_eq!(t.get(&format!("/media/{media_id}")).await.status(), 404);
        assert_eq!(t.sim.calls("media/upload"), 4);
    }
}
