//! Invite codes, issued lazily and exactly once per follower. No database connection is held
//! while WeChat is asked for a ticket (a slow WeChat must not take the pool from the pushes):
//! concurrent first requests take turns inside a process and a lease across instances, the
//! ticket is fetched holding neither a connection nor a transaction, and the code is stored in
//! the short transaction that ends the lease. Scene numbers come from database sequences, never
//! from counting rows. Permanent codes are used while the quota lasts, temporary ones after.

use std::time::{Duration as StdDuration, Instant};

use anyhow::Context;
use chrono::{DateTime, Duration, Utc};
use serde_json::json;

use crate::db;
use crate::db::codes::{CodeRow, NewCode};
use crate::db::leases::Lease;
use crate::db::Tx;
use crate::domain::{ExpireSeconds, OpenId, PermanentSceneId, SceneStr, TemporarySceneId};
use crate::services::{ServiceError, Services};
use crate::wechat::qrcode::{render_png, PermanentScene, QrCodeRequest, TemporaryScene};

/// WeChat's answer when the account has no permanent codes left.
const QUOTA_EXHAUSTED: i64 = 45029;
/// Longer than a `qrcode/create` call can take with its token fetch and retries; a holder
/// that dies is replaced after this.
const LEASE_TTL: StdDuration = StdDuration::from_secs(60);
/// How long a request waits for another instance issuing the same follower's code.
const LEASE_WAIT: StdDuration = StdDuration::from_secs(30);
const LEASE_POLL: StdDuration = StdDuration::from_millis(100);

/// How long before expiry a temporary code is replaced.
pub fn renew_margin(settings: &crate::config::Settings) -> Duration {
    (Duration::days(i64::from(settings.temporary_code_days)) / 2).min(Duration::days(3))
}

fn usable(code: &CodeRow, now: DateTime<Utc>, margin: Duration) -> bool {
    code.permanent || code.expires_at.is_some_and(|exp| exp - margin > now)
}

/// The follower's usable code, if there is one.
async fn current(state: &Services, openid: &OpenId) -> Result<Option<CodeRow>, ServiceError> {
    let margin = renew_margin(&state.settings);
    Ok(db::codes::by_owner(&state.pool, openid)
        .await?
        .filter(|code| usable(code, Utc::now(), margin)))
}

/// The follower's code: the existing one, or a new one (or a renewed temporary one).
#[tracing::instrument(skip_all, fields(openid = %openid))]
pub async fn issue(state: &Services, openid: &OpenId) -> Result<CodeRow, ServiceError> {
    if let Some(code) = current(state, openid).await? {
        return ensure_image(state, code).await;
    }
    let name = format!("invite_code:{openid}");
    let _turn = state.turns.take(&name).await;
    let deadline = Instant::now() + LEASE_WAIT;
    loop {
        if let Some(code) = current(state, openid).await? {
            return ensure_image(state, code).await;
        }
        if let Some(lease) = Lease::take(&state.pool, &name, LEASE_TTL).await? {
            let issued = issue_holding(state, openid, &lease).await;
            if issued.is_err() {
                // Let the next request try at once rather than after the lease runs out.
                if let Err(e) = lease.end(&state.pool).await {
                    tracing::warn!(error = ?e, "could not end an invite code lease; it will expire");
                }
            }
            if let Some(code) = issued? {
                return ensure_image(state, code).await;
            }
            // Our lease ran out and another request took it over: its code wins.
        } else if Instant::now() >= deadline {
            return Err(anyhow::anyhow!(
                "another instance has been issuing this follower's code for too long"
            )
            .into());
        } else {
            tokio::time::sleep(LEASE_POLL).await;
        }
    }
}

/// Issues the code while holding the follower's lease; `None` if the lease was lost meanwhile.
async fn issue_holding(
    state: &Services,
    openid: &OpenId,
    lease: &Lease,
) -> Result<Option<CodeRow>, ServiceError> {
    // The previous holder may have stored the code just before we took the lease.
    let existing = db::codes::by_owner(&state.pool, openid).await?;
    let margin = renew_margin(&state.settings);
    if let Some(code) = existing.as_ref().filter(|c| usable(c, Utc::now(), margin)) {
        lease.end(&state.pool).await?;
        return Ok(Some(code.clone()));
    }
    let new = match existing {
        // Renewal keeps the scene, so pushes from the old ticket's last hours still resolve.
        Some(CodeRow {
            scene_id: Some(scene),
            ..
        }) => temporary(state, i64::from(scene)).await?,
        _ => mint(state).await?,
    };
    let mut tx = state.pool.begin().await?;
    if !lease.end(&mut *tx).await? {
        return Ok(None);
    }
    db::users::ensure(&mut tx, openid).await?;
    let row = db::codes::save(&mut tx, db::codes::Owner::Follower(openid.as_str()), &new).await?;
    tx.commit().await.context("committing the invite code")?;
    Ok(Some(row))
}

/// Renders and stores the code's QR image if it has none yet. Done after the code is committed
/// and its lease ended; two callers racing here store the same bytes under the same content
/// key.
pub async fn ensure_image(state: &Services, mut code: CodeRow) -> Result<CodeRow, ServiceError> {
    if code.image_key.is_none() {
        let png = render_png(&code.url)?;
        let key = state.storage.put("qr", "png", png).await?;
        db::codes::set_image(&state.pool, code.id, &code.ticket, &key).await?;
        code.image_key = Some(key);
    }
    Ok(code)
}

/// A new code for a follower (called holding the follower's lease, no connection).
async fn mint(state: &Services) -> Result<NewCode, ServiceError> {
    if let Some(slot) = take_permanent_slot(state).await? {
        let scene = PermanentSceneId::new(slot).context("permanent slot out of range")?;
        let request = QrCodeRequest::Permanent(PermanentScene::Id(scene));
        match finish(state, &request, Some(slot)).await {
            Err(ServiceError::Wechat(e)) if e.errcode() == Some(QUOTA_EXHAUSTED) => {
                tracing::warn!("WeChat reports the permanent QR quota exhausted; issuing temporary codes from now on");
                set_quota_exhausted(state).await?;
            }
            other => return other,
        }
    }
    let scene = db::codes::next_temporary_scene(&state.pool).await?;
    temporary(state, scene).await
}

async fn take_permanent_slot(state: &Services) -> Result<Option<i64>, ServiceError> {
    if quota_exhausted(state).await? {
        return Ok(None);
    }
    let slot = db::codes::next_permanent_slot(&state.pool).await?;
    if slot > i64::from(state.settings.permanent_quota) {
        set_quota_exhausted(state).await?;
        return Ok(None);
    }
    Ok(Some(slot))
}

async fn quota_exhausted(state: &Services) -> Result<bool, ServiceError> {
    Ok(
        db::state::get(&state.pool, db::state::PERMANENT_QUOTA_EXHAUSTED)
            .await?
            .is_some(),
    )
}

async fn set_quota_exhausted(state: &Services) -> Result<(), ServiceError> {
    let since = json!({ "since": Utc::now() });
    Ok(db::state::set_once(&state.pool, db::state::PERMANENT_QUOTA_EXHAUSTED, &since).await?)
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
pub(super) fn expiry(
    issued_at: DateTime<Utc>,
    requested: i64,
    answered: Option<i64>,
) -> DateTime<Utc> {
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

/// A permanent string-scene code for the operator's channel `channel_id`, from WeChat; shares
/// the permanent quota. Called holding no connection; `save_channel_code` stores it.
pub async fn issue_channel_code(
    state: &Services,
    channel_id: i64,
) -> Result<NewCode, ServiceError> {
    let slot = take_permanent_slot(state).await?.ok_or_else(|| {
        anyhow::anyhow!(
            "the permanent QR code quota is used up; channel codes need a permanent code"
        )
    })?;
    let scene = SceneStr::new(&format!("ch_{channel_id}")).context("channel scene")?;
    let request = QrCodeRequest::Permanent(PermanentScene::Str(scene));
    finish(state, &request, Some(slot)).await
}

/// Stores a channel's code (see `issue_channel_code`).
pub async fn save_channel_code(
    tx: &mut Tx<'_>,
    channel_id: i64,
    code: &NewCode,
) -> Result<CodeRow, ServiceError> {
    Ok(db::codes::save(tx, db::codes::Owner::Channel(channel_id), code).await?)
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
