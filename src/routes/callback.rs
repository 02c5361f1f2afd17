//! `/wechat/callback`: the URL check and every push. A push is verified, decrypted in safe
//! mode, parsed, and handed to the push path (group commit); it is answered once its batch
//! has committed. WeChat's retries of it are answered `success` and change nothing.

use actix_web::{web, HttpResponse};
use chrono::Utc;
use futures_util::StreamExt;
use secrecy::ExposeSecret;

use crate::error::AppError;
use crate::poster::delivery::{self, PosterReply};
use crate::push::Incoming;
use crate::state::AppState;
use crate::wechat::callback_query::CallbackQuery;
use crate::wechat::crypto::verify_signature;
use crate::wechat::message::{self, Push, MAX_BODY_BYTES};

/// Plaintext pushes further than this from our clock are refused (limits signature replay).
const MAX_CLOCK_SKEW_SECS: u64 = 300;

fn signed(state: &AppState, q: &CallbackQuery) -> bool {
    match (&q.signature, &q.timestamp, &q.nonce) {
        (Some(sig), Some(ts), Some(nonce)) => verify_signature(
            sig,
            &[state.settings.wechat.token.expose_secret(), ts, nonce],
        ),
        _ => false,
    }
}

pub async fn verify_url(state: web::Data<AppState>, q: web::Query<CallbackQuery>) -> HttpResponse {
    match &q.echostr {
        Some(echostr) if signed(&state, &q) => HttpResponse::Ok()
            .content_type("text/plain")
            .body(echostr.clone()),
        _ => {
            state.metrics.event("rejected");
            HttpResponse::Forbidden().body("signature mismatch")
        }
    }
}

pub async fn receive(
    state: web::Data<AppState>,
    q: web::Query<CallbackQuery>,
    body: web::Payload,
) -> Result<HttpResponse, AppError> {
    let result = receive_inner(&state, &q, body).await;
    if let Err(e) = &result {
        if !matches!(e, AppError::Internal(_)) {
            state.metrics.event("rejected");
        }
    }
    result
}

async fn receive_inner(
    state: &AppState,
    q: &CallbackQuery,
    body: web::Payload,
) -> Result<HttpResponse, AppError> {
    if !signed(state, q) {
        return Err(AppError::Forbidden("signature mismatch".into()));
    }
    let body = read_capped(body, MAX_BODY_BYTES).await?;
    let push = open_push(state, q, &body)?;
    let incoming =
        Incoming::from_push(&push, &state.settings).map_err(|e| AppError::BadRequest(e.0))?;
    let openid = incoming.openid.clone();
    state.metrics.event("received");

    let decided = state.pushes.submit(incoming).await?;
    state.metrics.event(decided.outcome.as_str());
    let reply = match decided.poster_job {
        // Only after the commit: rendering and uploading must not hold the push's locks.
        Some(job) => Some(match delivery::reply_in_time(state, &openid, job).await {
            PosterReply::Image(media_id) => Reply::Image { media_id },
            PosterReply::Text(text) => Reply::Text(text.to_string()),
        }),
        None => decided.reply.map(Reply::Text),
    };
    Ok(match reply {
        Some(reply) => passive_reply(state, &push, &reply),
        None => success(),
    })
}

/// A passive reply to the sender.
enum Reply {
    Text(String),
    /// An image WeChat holds as media (the follower's poster).
    Image {
        media_id: String,
    },
}

/// Checks the mode's rules and returns the parsed push.
fn open_push(state: &AppState, q: &CallbackQuery, body: &[u8]) -> Result<Push, AppError> {
    let aes = q.is_encrypted();
    let Some(crypto) = &state.crypto else {
        if aes {
            return Err(AppError::BadRequest(
                "encrypted push, but no WECHAT_ENCODING_AES_KEY is configured".into(),
            ));
        }
        if !q.timestamp_within(Utc::now().timestamp(), MAX_CLOCK_SKEW_SECS) {
            return Err(AppError::Forbidden(
                "timestamp missing, unreadable or too far from the server clock".into(),
            ));
        }
        return message::parse_push(body).map_err(|e| AppError::BadRequest(e.to_string()));
    };
    // A plaintext body is covered by no signature: in safe mode only the encrypted part counts.
    if !aes {
        return Err(AppError::Forbidden(
            "safe mode: pushes must be encrypted".into(),
        ));
    }
    let encrypt =
        message::parse_encrypted_envelope(body).map_err(|e| AppError::BadRequest(e.to_string()))?;
    let (ts, nonce) = (
        q.timestamp.as_deref().unwrap_or(""),
        q.nonce.as_deref().unwrap_or(""),
    );
    let msg_signature = q.msg_signature.as_deref().unwrap_or("");
    if !crypto.verify_msg_signature(msg_signature, ts, nonce, &encrypt) {
        return Err(AppError::Forbidden("msg_signature mismatch".into()));
    }
    let xml = crypto
        .decrypt(&encrypt)
        .map_err(|e| AppError::BadRequest(e.to_string()))?;
    message::parse_push(xml.as_bytes()).map_err(|e| AppError::BadRequest(e.to_string()))
}

fn passive_reply(state: &AppState, push: &Push, reply: &Reply) -> HttpResponse {
    let now = Utc::now().timestamp();
    let xml = match reply {
        Reply::Text(text) => message::text_reply(&push.from_user, &push.to_user, now, text),
        Reply::Image { media_id } => {
            message::image_reply(&push.from_user, &push.to_user, now, media_id)
        }
    };
    let body = match &state.crypto {
        Some(crypto) => {
            let nonce = format!("{:010}", rand::random::<u32>());
            crypto.encrypted_reply(&xml, &now.to_string(), &nonce)
        }
        None => xml,
    };
    HttpResponse::Ok()
        .content_type("application/xml; charset=utf-8")
        .body(body)
}

fn success() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain")
        .body("success")
}

/// Reads the body, keeping at most `limit` bytes; a larger body is refused (400). The rest of a
/// moderately oversized body is read and dropped so the client gets to see the answer.
async fn read_capped(mut payload: web::Payload, limit: usize) -> Result<Vec<u8>, AppError> {
    const DRAIN_AT_MOST: usize = 4 << 20;
    let mut body = Vec::new();
    let mut seen = 0usize;
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|e| AppError::BadRequest(format!("could not read the body: {e}")))?;
        seen += chunk.len();
        if seen <= limit {
            body.extend_from_slice(&chunk);
        } else if seen > DRAIN_AT_MOST {
            break;
        }
    }
    if seen > limit {
        return Err(AppError::BadRequest(format!(
            "body exceeds {} KiB",
            limit / 1024
        )));
    }
    Ok(body)
}
