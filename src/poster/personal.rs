//! A follower's poster for the running campaign, rendered once and kept in storage under a key
//! derived from everything that shows on it (background, layout, QR ticket, nickname, avatar
//! bytes, font, render version): a repeat request is a storage read, and a change to any input
//! is a new key, hence a new render.

use std::time::Duration;

use ab_glyph::FontArc;
use anyhow::Context;
use bytes::Bytes;
use chrono::Utc;
use serde_json::json;
use sha1::{Digest, Sha1};
use tokio::sync::Semaphore;

use super::{cached_font, default_background, render, PosterLayout, RENDER_VERSION};
use crate::db;
use crate::db::codes::CodeRow;
use crate::domain::OpenId;
use crate::referral::codes;
use crate::services::ServiceError;
use crate::services::Services;
use crate::wechat::qrcode::render_png;

/// Rendering is CPU work: at most this many at once, whatever the request rate.
static RENDERS: Semaphore = Semaphore::const_new(2);
/// The name on the poster of a follower who has not shared their profile.
const UNNAMED: &str = "你的好友";
const AVATAR_MAX_BYTES: usize = 2 * 1024 * 1024;
const AVATAR_FETCH_TIMEOUT: Duration = Duration::from_secs(3);
/// How long the avatar URL → stored avatar mapping is trusted (WeChat gives a new URL when the
/// picture changes, so this only bounds how long a dead mapping lingers).
const AVATAR_MAPPING_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

pub struct Poster {
    /// Storage key (`poster/<sha1>.jpg`), also a strong ETag.
    pub key: String,
    pub jpeg: Bytes,
}

/// The follower's poster: from storage when nothing changed, rendered (and stored) otherwise.
#[tracing::instrument(skip_all, fields(openid = %openid))]
pub async fn for_follower(state: &Services, openid: &OpenId) -> Result<Poster, ServiceError> {
    let inputs = Inputs::gather(state, openid).await?;
    let key = inputs.storage_key(state);
    if let Some(jpeg) = state.storage.get(&key).await? {
        return Ok(Poster { key, jpeg });
    }
    let jpeg = inputs.render(state).await?;
    state.storage.put_at(&key, jpeg.to_vec()).await?;
    Ok(Poster { key, jpeg })
}

/// Everything a follower's poster is drawn from.
struct Inputs {
    code: CodeRow,
    /// `None`: the bundled default background.
    background_key: Option<String>,
    layout: PosterLayout,
    nickname: String,
    avatar_key: Option<String>,
    font: Option<FontArc>,
}

impl Inputs {
    async fn gather(state: &Services, openid: &OpenId) -> Result<Inputs, ServiceError> {
        let code = codes::issue(state, openid).await?;
        let campaign = db::campaigns::active_at(&state.pool, Utc::now()).await?;
        let settings = match &campaign {
            Some(c) => db::posters::of_campaign(&state.pool, c.id).await?,
            None => None,
        };
        let background_key = settings
            .as_ref()
            .and_then(|s| s.poster_background_key.clone());
        let layout = settings
            .map(|s| {
                serde_json::from_value::<PosterLayout>(s.poster_layout).unwrap_or_else(|e| {
                    tracing::warn!(error = %e, "campaign poster layout is invalid; using the default layout");
                    PosterLayout::default()
                })
            })
            .unwrap_or_default();
        let user = db::users::get(&state.pool, openid).await?;
        // Without a shared profile the line under the name still reads as a sentence.
        let nickname = user
            .as_ref()
            .and_then(|u| u.nickname.clone())
            .unwrap_or_else(|| UNNAMED.to_string());
        let avatar_key = match user.as_ref().and_then(|u| u.avatar_url.as_deref()) {
            Some(url) => stored_avatar(state, url).await,
            None => None,
        };
        Ok(Inputs {
            code,
            background_key,
            layout,
            nickname,
            avatar_key,
            font: cached_font(&state.settings.poster_font),
        })
    }

    /// Where a poster of exactly these inputs is kept: a hash of them, so any change renders
    /// anew and an unchanged poster is never rendered twice.
    fn storage_key(&self, state: &Services) -> String {
        let fingerprint = json!({
            "version": RENDER_VERSION,
            "background": self.background_key.clone().unwrap_or_else(|| format!("default:{}", default_background_hash())),
            "layout": self.layout,
            "ticket": self.code.ticket,
            "url": self.code.url,
            "nickname": self.nickname,
            "avatar": self.avatar_key,
            "font": self.font.as_ref().map(|_| state.settings.poster_font.display().to_string()),
        });
        format!(
            "poster/{}.jpg",
            hex::encode(Sha1::digest(fingerprint.to_string().as_bytes()))
        )
    }

    /// Fetches the images and renders the JPEG (a few at a time, off the async threads).
    async fn render(self, state: &Services) -> Result<Bytes, ServiceError> {
        let background = match &self.background_key {
            Some(k) => state
                .storage
                .get(k)
                .await?
                .with_context(|| format!("the campaign's poster background {k} is not in storage"))?
                .to_vec(),
            None => default_background()?,
        };
        let qr_png = match self.code.image_key.as_deref() {
            Some(k) => state.storage.get(k).await?.map(|b| b.to_vec()),
            None => None,
        };
        let qr_png = match qr_png {
            Some(png) => png,
            None => render_png(&self.code.url)?,
        };
        let avatar = match &self.avatar_key {
            Some(k) => state.storage.get(k).await?.map(|b| b.to_vec()),
            None => None,
        };

        let _permit = RENDERS.acquire().await.context("render limiter closed")?;
        let started = std::time::Instant::now();
        let Inputs {
            layout,
            nickname,
            font,
            ..
        } = self;
        let jpeg = tokio::task::spawn_blocking(move || {
            render(
                &background,
                &layout,
                &qr_png,
                avatar.as_deref(),
                Some(nickname.as_str()),
                font.as_ref(),
            )
        })
        .await
        .context("the poster render task failed")??;
        tracing::info!(
            elapsed_ms = started.elapsed().as_millis() as u64,
            bytes = jpeg.len(),
            "rendered a poster"
        );
        Ok(Bytes::from(jpeg))
    }
}

fn default_background_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| hex::encode(Sha1::digest(super::DEFAULT_BACKGROUND)))
}

/// The storage key of the avatar at `url`, fetching and storing it the first time. `None` (and
/// a poster without the avatar) when it cannot be fetched: a slow avatar host must not cost the
/// follower their poster.
async fn stored_avatar(state: &Services, url: &str) -> Option<String> {
    if !(url.starts_with("https://") || url.starts_with("http://")) {
        return None;
    }
    let mapping = format!("avatar:{}", hex::encode(Sha1::digest(url.as_bytes())));
    if let Ok(Some(key)) = state.store.get(&mapping).await {
        return Some(key);
    }
    match fetch_avatar(state, url).await {
        Ok((ext, bytes)) => {
            let key = match state.storage.put("avatar", ext, bytes).await {
                Ok(key) => key,
                Err(e) => {
                    tracing::warn!(error = ?e, "could not store an avatar");
                    return None;
                }
            };
            if let Err(e) = state
                .store
                .set(&mapping, &key, AVATAR_MAPPING_TTL, false)
                .await
            {
                tracing::warn!(error = ?e, "could not remember a stored avatar");
            }
            Some(key)
        }
        Err(e) => {
            tracing::warn!(error = %e, "could not fetch an avatar; the poster is drawn without it");
            None
        }
    }
}

async fn fetch_avatar(state: &Services, url: &str) -> anyhow::Result<(&'static str, Vec<u8>)> {
    let mut response = state
        .wechat
        .http()
        .get(url)
        .timeout(AVATAR_FETCH_TIMEOUT)
        .send()
        .await
        .context("requesting the avatar")?
        .error_for_status()
        .context("the avatar host refused")?;
    let mut bytes = Vec::new();
    while let Some(chunk) = response.chunk().await.context("reading the avatar")? {
        if bytes.len() + chunk.len() > AVATAR_MAX_BYTES {
            anyhow::bail!("the avatar is larger than {} bytes", AVATAR_MAX_BYTES);
        }
        bytes.extend_from_slice(&chunk);
    }
    let ext = match image::guess_format(&bytes).context("the avatar is not an image")? {
        image::ImageFormat::Png => "png",
        image::ImageFormat::Jpeg => "jpg",
        other => anyhow::bail!("unexpected avatar format {other:?}"),
    };
    Ok((ext, bytes))
}
