//! A follower's poster for the running campaign, rendered once and kept in storage under a key
//! derived from everything that shows on it (background, layout, QR ticket, nickname, avatar
//! bytes, font, render version): a repeat request is a storage read, and a change to any input
//! is a new key, hence a new render.

use ab_glyph::FontArc;
use anyhow::Context;
use bytes::Bytes;
use chrono::Utc;
use serde_json::json;
use sha1::{Digest, Sha1};
use tokio::sync::Mutex;

use super::{
    avatar, cached_font, default_background, render, Headline, PosterLayout, RENDER_VERSION,
};
use crate::db;
use crate::db::codes::CodeRow;
use crate::domain::OpenId;
use crate::referral::codes;
use crate::services::ServiceError;
use crate::services::Services;
use crate::wechat::qrcode::render_png;

/// The name on the poster of a follower who has not shared their profile.
const UNNAMED: &str = "你的好友";
/// Turns to draw a poster, by a hash of its key: concurrent first requests for one poster wait
/// for a single render instead of each drawing it (different posters rarely share a turn).
static TURNS: [Mutex<()>; 64] = [const { Mutex::const_new(()) }; 64];

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
    let turn = usize::from(Sha1::digest(key.as_bytes())[0]) % TURNS.len();
    let _turn = TURNS[turn].lock().await;
    // Whoever had the turn before may have drawn this very poster.
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
    /// On the bundled background: the campaign's name and top reward.
    headline: Option<Headline>,
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
        let headline = match (&background_key, &campaign) {
            (Some(_), _) => None,
            (None, Some(c)) => Some(headline_of(state, c).await?),
            (None, None) => Some(Headline::of_campaign("", true, None)),
        };
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
            Some(url) => avatar::stored(state, url).await,
            None => None,
        };
        Ok(Inputs {
            code,
            background_key,
            layout,
            nickname,
            avatar_key,
            font: cached_font(&state.settings.poster_font),
            headline,
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
            "headline": self.headline,
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

        let _permit = super::render_turn().await?;
        state.metrics.poster_renders.inc();
        let started = std::time::Instant::now();
        let Inputs {
            layout,
            nickname,
            font,
            headline,
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
                headline.as_ref(),
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

/// The headline the bundled background shows for `campaign`: its name and its top tier's reward.
pub async fn headline_of(
    state: &Services,
    campaign: &db::campaigns::Campaign,
) -> sqlx::Result<Headline> {
    let tiers = db::campaigns::tiers(&state.pool, campaign.id).await?;
    Ok(Headline::of_campaign(
        &campaign.name,
        campaign.is_default,
        tiers.last().map(|t| t.name.as_str()),
    ))
}
