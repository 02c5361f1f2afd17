//! Binding codes: the second use of parametric codes in WeChat's documentation — binding a
//! physical thing or a session to a follower. A temporary string-scene code carries the
//! caller's payload; the first scan or follow through it completes it (in the push path,
//! `push::hooks`) and a `binding.completed` webhook tells the caller who it was. A follow
//! through a binding code is a plain follow: it credits no one.

use chrono::Utc;
use serde_json::Value;
use uuid::Uuid;

use super::codes::expiry;
use crate::db;
use crate::db::bindings::{BindingRow, NewBinding};
use crate::domain::{ExpireSeconds, SceneStr};
use crate::services::{ServiceError, Services};
use crate::wechat::qrcode::{render_png, QrCodeRequest, TemporaryScene};

pub use crate::domain::BINDING_PREFIX as SCENE_PREFIX;

/// Creates a binding code living `expire` from now, carrying `payload`.
pub async fn create(
    state: &Services,
    payload: &Value,
    expire: ExpireSeconds,
) -> Result<BindingRow, ServiceError> {
    let id = Uuid::new_v4();
    let scene = SceneStr::new(&format!("{SCENE_PREFIX}{}", id.simple()))
        .map_err(|e| anyhow::anyhow!("binding scene: {e}"))?;
    let request = QrCodeRequest::Temporary {
        scene: TemporaryScene::Str(scene.clone()),
        expire,
    };
    let issued_at = Utc::now();
    let ticket = state.wechat.create_qrcode(&request).await?;
    let expires_at = expiry(issued_at, i64::from(expire.get()), ticket.expire_seconds);
    let png = render_png(&ticket.url)?;
    let image_key = state.storage.put("qr", "png", png).await?;
    Ok(db::bindings::create(
        &state.pool,
        &NewBinding {
            id,
            scene_str: scene.as_str(),
            payload,
            ticket: &ticket.ticket,
            url: &ticket.url,
            image_key: &image_key,
            expires_at,
        },
    )
    .await?)
}
