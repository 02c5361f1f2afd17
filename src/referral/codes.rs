//! Invite codes, issued lazily and exactly once per follower. Concurrent first requests (on
//! any instance) serialise on a per-owner advisory lock and re-read after taking it, so one
//! `qrcode/create` call is made; scene numbers come from database sequences, never from
//! counting rows. Permanent codes are used while the quota lasts, temporary ones after.

use anyhow::Context;
use chrono::{DateTime, Duration, Utc};
use serde_json::json;

use crate::db::codes::{CodeRow, NewCode};
use crate::db::{self, Tx};
use crate::domain::{ExpireSeconds, OpenId, PermanentSceneId, SceneStr, TemporarySceneId};
use crate::services::{ServiceError, Services};
use crate::wechat::qrcode::{render_png, PermanentScene, QrCodeRequest, TemporaryScene};

/// WeChat's answer when the account has no permanent codes left.
const QUOTA_EXHAUSTED: i64 = 45029;

/// How long before expiry a temporary code is replaced.
pub fn renew_margin(settings: &crate::config::Settings) -> Duration {
    (Duration::days(i64::from(settings.temporary_code_days)) / 2).min(Duration::days(3))
}

fn usable(code: &CodeRow, now: DateTime<Utc>, margin: Duration) -> bool {
    code.permanent || code.expires_at.is_some_and(|exp| exp - margin > now)
}

/// The follower's code: the existing one, or a new one (or a renewed temporary one).
#[tracing::instrument(skip_all, fields(openid = %openid))]
pub async fn issue(state: &Services, openid: &OpenId) -> Result<CodeRow, ServiceError> {
    let margin = renew_margin(&state.settings);
    if let Some(code) = db::codes::by_owner(&state.pool, openid).await? {
        if usable(&code, Utc::now(), margin) {
            return ensure_image(state, code).await;
        }
    }
    let mut tx = state.pool.begin().await?;
    db::codes::lock_owner(&mut tx, openid).await?;
    // Another request may have issued it while we waited for the lock.
    let new = match db::codes::by_owner(&mut *tx, openid).await? {
        Some(code) if usable(&code, Utc::now(), margin) => {
            drop(tx);
            return ensure_image(state, code).await;
        }
        // Renewal keeps the scene, so pushes from the old ticket's last hours still resolve.
        Some(CodeRow {
            scene_id: Some(scene),
            ..
        }) => temporary(state, i64::from(scene)).await?,
        _ => mint(state, &mut tx).await?,
    };
    db::users::ensure(&mut tx, openid).await?;
    let row = db::codes::save(&mut tx, db::codes::Owner::Follower(openid.as_str()), &new).await?;
    tx.commit().await.context("committing the invite code")?;
    ensure_image(state, row).await
}

/// Renders and stores the code's QR image if it has none yet. Done after the code is committed,
/// so the per-follower lock is held only for the WeChat call; two callers racing here store
/// the same bytes under the same content key.
pub async fn ensure_image(state: &Services, mut code: CodeRow) -> Result<CodeRow, ServiceError> {
    if code.image_key.is_none() {
        let png = render_png(&code.url)?;
        let key = state.storage.put("qr", "png", png).await?;
        db::codes::set_image(&state.pool, code.id, &code.ticket, &key).await?;
        code.image_key = Some(key);
    }
    Ok(code)
}

/// A new code for a follower. Everything here runs on the transaction holding the owner lock:
/// asking the pool for a second connection while holding it could starve the pool.
async fn mint(state: &Services, tx: &mut Tx<'_>) -> Result<NewCode, ServiceError> {
    if let Some(slot) = take_permanent_slot(state, tx).await? {
        let scene = PermanentSceneId::new(slot).context("permanent slot out of range")?;
        let request = QrCodeRequest::Permanent(PermanentScene::Id(scene));
        match finish(state, &request, Some(slot)).await {
            Err(ServiceError::Wechat(e)) if e.errcode() == Some(QUOTA_EXHAUSTED) => {
                tracing::warn!("WeChat reports the permanent QR quota exhausted; issuing temporary codes from now on");
                set_quota_exhausted(tx).await?;
            }
            other => return other,
        }
    }
    let scene = db::codes::next_temporary_scene(tx).await?;
    temporary(state, scene).await
}

async fn take_permanent_slot(
    state: &Services,
    tx: &mut Tx<'_>,
) -> Result<Option<i64>, ServiceError> {
    if quota_exhausted(tx).await? {
        return Ok(None);
    }
    let slot = db::codes::next_permanent_slot(tx).await?;
    if slot > i64::from(state.settings.permanent_quota) {
        set_quota_exhausted(tx).await?;
        return Ok(None);
    }
    Ok(Some(slot))
}

async fn quota_exhausted(tx: &mut Tx<'_>) -> Result<bool, ServiceError> {
    Ok(
        db::state::get(&mut **tx, db::state::PERMANENT_QUOTA_EXHAUSTED)
            .await?
            .is_some(),
    )
}

async fn set_quota_exhausted(tx: &mut Tx<'_>) -> Result<(), ServiceError> {
    let since = json!({ "since": Utc::now() });
    Ok(db::state::set_once(&mut **tx, db::state::PERMANENT_QUOTA_EXHAUSTED, &since).await?)
}

async fn temporary(state: &Services, scene: i64) -> Result<NewCode, ServiceError> {
    let scene = TemporarySceneId::new(scene).context("temporary scene out of range")?;
    let expire = ExpireSeconds::days(state.settings.temporary_code_days)
        .context("temporary code lifetime")?;
    let request = QrCodeRequest::Temporary {
        scene: TemporaryScene::Id(scene),
        expire,
    };
    finish(state, &request, None).await
}

/// When a temporary code asked to live `requested` seconds expires: as WeChat answered when
/// that is a lifetime it could give (1 second up to what was asked), else as asked. An answer
/// out of range must not be believed, and must never overflow the date arithmetic.
fn expiry(issued_at: DateTime<Utc>, requested: i64, answered: Option<i64>) -> DateTime<Utc> {
    let secs = answered
        .filter(|s| (1..=requested).contains(s))
        .unwrap_or(requested);
    issued_at + Duration::seconds(secs)
}

/// Asks WeChat for the ticket, renders the image from its `url` and stores it.
async fn finish(
    state: &Services,
    request: &QrCodeRequest,
    quota_slot: Option<i64>,
) -> Result<NewCode, ServiceError> {
    let issued_at = Utc::now();
    let ticket = state.wechat.create_qrcode(request).await?;
    let expires_at = match request {
        QrCodeRequest::Temporary { expire, .. } => Some(expiry(
            issued_at,
            i64::from(expire.get()),
            ticket.expire_seconds,
        )),
        QrCodeRequest::Permanent(_) => None,
    };
    let (scene_id, scene_str) = match request {
        QrCodeRequest::Temporary {
            scene: TemporaryScene::Id(id),
            ..
        } => (Some(id.get() as i64), None),
        QrCodeRequest::Permanent(PermanentScene::Id(id)) => (Some(i64::from(id.get())), None),
        QrCodeRequest::Temporary {
            scene: TemporaryScene::Str(s),
            ..
        }
        | QrCodeRequest::Permanent(PermanentScene::Str(s)) => (None, Some(s.as_str().to_string())),
    };
    let to_i32 = |v: i64| i32::try_from(v).context("scene id does not fit the database column");
    Ok(NewCode {
        permanent: request.is_permanent(),
        scene_id: scene_id.map(to_i32).transpose()?,
        scene_str,
        quota_slot: quota_slot.map(to_i32).transpose()?,
        ticket: ticket.ticket,
        url: ticket.url,
        expires_at,
    })
}

/// A permanent string-scene code for an operator's channel; shares the permanent quota.
pub async fn issue_channel_code(
    state: &Services,
    tx: &mut Tx<'_>,
    channel_id: i64,
) -> Result<CodeRow, ServiceError> {
    let slot = take_permanent_slot(state, tx).await?.ok_or_else(|| {
        anyhow::anyhow!(
            "the permanent QR code quota is used up; channel codes need a permanent code"
        )
    })?;
    let scene = SceneStr::new(&format!("ch_{channel_id}")).context("channel scene")?;
    let request = QrCodeRequest::Permanent(PermanentScene::Str(scene));
    let code = finish(state, &request, Some(slot)).await?;
    Ok(db::codes::save(tx, db::codes::Owner::Channel(channel_id), &code).await?)
}

/// Renews followers' temporary codes that are about to expire. Returns how many were renewed.
pub async fn renew_expiring(state: &Services) -> anyhow::Result<usize> {
    let before = Utc::now() + renew_margin(&state.settings);
    let owners = db::codes::expiring_user_codes(&state.pool, before, 500).await?;
    let mut renewed = 0;
    for owner in owners {
        let Ok(openid) = OpenId::parse(&owner) else {
            continue;
        };
        match issue(state, &openid).await {
            Ok(_) => renewed += 1,
            Err(e) => tracing::warn!(openid = %owner, error = %e, "could not renew an invite code"),
        }
    }
    Ok(renewed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_lifetime_wechat_could_give_is_believed() {
        let issued = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let asked = 30 * 24 * 3600;
        let at = |answered| (expiry(issued, asked, answered) - issued).num_seconds();
        assert_eq!(at(None), asked);
        assert_eq!(at(Some(3600)), 3600);
        for nonsense in [0, -5, asked + 1, i64::MAX, i64::MIN] {
            assert_eq!(at(Some(nonsense)), asked, "{nonsense}");
        }
    }
}
