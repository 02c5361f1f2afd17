//! Applying one push: record it, decide, write the consequences — all in one transaction, so
//! a push is either fully applied or not at all, and a retry of it changes nothing.

use anyhow::Context;
use chrono::{DateTime, Utc};
use serde_json::json;

use super::rules::{self, SubscribeDecision};
use super::texts::fill;
use crate::db::users::{Presence, UserRow};
use crate::db::{self, Tx};
use crate::domain::{OpenId, Scene};
use crate::poster::delivery::{self, PosterReply};
use crate::state::AppState;
use crate::wechat::message::{Push, PushKind};

/// What the callback should answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handled {
    /// The push was already recorded (a WeChat retry): nothing changed.
    pub duplicate: bool,
    /// A passive reply to the sender, if any.
    pub reply: Option<Reply>,
    pub outcome: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Text(String),
    /// An image WeChat holds as media (the follower's poster).
    Image {
        media_id: String,
    },
}

/// Outbox job kinds.
pub const JOB_MESSAGE: &str = "message";

#[tracing::instrument(skip_all, fields(openid = %push.from_user, outcome))]
pub async fn handle(state: &AppState, openid: &OpenId, push: &Push) -> anyhow::Result<Handled> {
    let at = DateTime::from_timestamp(push.create_time, 0).context("CreateTime out of range")?;
    let mut tx = state
        .pool
        .begin()
        .await
        .context("starting the push transaction")?;
    let Some(event_id) = db::events::insert(&mut tx, push, at)
        .await
        .context("recording the push")?
    else {
        tx.rollback().await.ok();
        return Ok(Handled {
            duplicate: true,
            reply: None,
            outcome: "duplicate",
        });
    };
    let mut poster_job = None;
    let (outcome, reply) = match push.kind() {
        PushKind::Subscribe { scene, .. } => {
            subscribe(&mut tx, event_id, openid, at, scene).await?
        }
        PushKind::Scan { scene, .. } => scan(&mut tx, openid, at, scene).await?,
        PushKind::Unsubscribe => unsubscribe(&mut tx, event_id, openid, at).await?,
        kind @ (PushKind::Click { .. } | PushKind::Text { .. }) => {
            seen(
                &mut tx,
                openid,
                at,
                Presence {
                    following: true,
                    state: None,
                },
            )
            .await?;
            if delivery::asks_for_poster(&state.settings, &kind) {
                // Queued with the push, so the poster is sent even if this process dies
                // before answering; cancelled when the passive reply carries it.
                let job = serde_json::to_value(delivery::PosterJob {
                    openid: openid.to_string(),
                })
                .context("the poster job payload")?;
                poster_job = Some(
                    db::outbox::enqueue_after(
                        &mut tx,
                        delivery::JOB_POSTER,
                        &job,
                        delivery::FALLBACK_DELAY_SECS,
                    )
                    .await?,
                );
                ("poster", None)
            } else {
                ("interaction", None)
            }
        }
        PushKind::Other => ("recorded", None),
    };
    db::events::set_outcome(&mut tx, event_id, outcome).await?;
    tx.commit().await.context("committing the push")?;
    if outcome == "credited" {
        // Only now can the worker see the messages this credit queued.
        state.outbox_wake.notify_one();
    }
    tracing::Span::current().record("outcome", outcome);
    let reply = match poster_job {
        // Only after the commit: rendering and uploading must not hold the push's locks.
        Some(job) => Some(match delivery::reply_in_time(state, openid, job).await {
            PosterReply::Image(media_id) => Reply::Image { media_id },
            PosterReply::Text(text) => Reply::Text(text.to_string()),
        }),
        None => reply.map(Reply::Text),
    };
    Ok(Handled {
        duplicate: false,
        reply,
        outcome,
    })
}

async fn subscribe(
    tx: &mut Tx<'_>,
    event_id: i64,
    invitee: &OpenId,
    at: DateTime<Utc>,
    scene_key: Option<&str>,
) -> anyhow::Result<(&'static str, Option<String>)> {
    let before = seen(
        tx,
        invitee,
        at,
        Presence {
            following: true,
            state: Some(true),
        },
    )
    .await?;
    let Some(key) = scene_key else {
        return Ok(("followed", None));
    };
    let code = match Scene::parse(key) {
        Ok(scene) => db::codes::by_scene(&mut **tx, &scene).await?,
        Err(_) => None,
    };
    if let Some(code) = &code {
        db::codes::count_use(tx, code.id, true).await?;
    }
    let campaign = db::campaigns::active_at(&mut **tx, at).await?;
    let decision = rules::decide_subscribe(
        invitee.as_str(),
        &before,
        at,
        code.as_ref(),
        campaign.as_ref(),
    );
    let (SubscribeDecision::Credit { inviter, .. }, Some(campaign)) = (&decision, campaign) else {
        return Ok((decision.outcome(), None));
    };
    let Some(referral_id) = db::referrals::credit(
        tx,
        campaign.id,
        invitee.as_str(),
        inviter,
        key,
        event_id,
        at,
    )
    .await?
    else {
        return Ok(("already_credited", None));
    };
    let count = db::referrals::count_credit(tx, campaign.id, inviter, at).await?;
    let tiers = db::campaigns::tiers(&mut **tx, campaign.id).await?;
    let invitee_name = before
        .nickname
        .clone()
        .unwrap_or_else(|| "一位新朋友".into());
    let next = rules::next_tier(count, tiers.iter().map(|t| (t.threshold, t.name.as_str())))
        .map(|(more, name)| format!("再邀请 {more} 位即可获得「{name}」。"))
        .unwrap_or_default();
    let text = fill(
        &campaign.credit_text,
        &[
            ("invitee", &invitee_name),
            ("count", &count.to_string()),
            ("next", &next),
        ],
    );
    enqueue_message(
        tx,
        inviter,
        &text,
        campaign.template_id.as_deref(),
        json!({ "referral_id": referral_id }),
    )
    .await?;

    for tier in tiers.iter().filter(|t| t.threshold <= count) {
        let Some(grant) = db::campaigns::grant(tx, tier, inviter).await? else {
            continue;
        };
        let code_line = match (&grant.code, grant.status.as_str()) {
            (Some(code), _) => format!("兑换码：{code}"),
            (None, "out_of_stock") => "奖励码已发完，工作人员会尽快与你联系。".to_string(),
            _ => String::new(),
        };
        let text = fill(
            &campaign.reward_text,
            &[
                ("count", &count.to_string()),
                ("reward", &tier.name),
                ("code", &code_line),
            ],
        );
        enqueue_message(
            tx,
            inviter,
            &text,
            campaign.template_id.as_deref(),
            json!({ "grant_id": grant.id }),
        )
        .await?;
    }

    // An unsubscribe that happened after this follow may have been pushed (and applied) first.
    if left_after(&before, at) {
        if let Some(left_at) = before
            .state_at
            .filter(|left| rules::within_revoke_window(at, *left, campaign.revoke_window_days))
        {
            revoke_one(
                tx,
                referral_id,
                campaign.id,
                inviter,
                campaign.revoke_rewards,
                None,
                left_at,
            )
            .await?;
        }
    }
    // Read without a lock: locking a second user row here could deadlock with a push about them.
    let inviter_name = db::users::nickname(&mut **tx, inviter)
        .await?
        .unwrap_or_else(|| "好友".into());
    Ok((
        "credited",
        Some(fill(&campaign.welcome_text, &[("inviter", &inviter_name)])),
    ))
}

/// Locks the follower's row (pushes about one follower are decided one at a time, on any
/// instance), records what this push says about them, and returns the row as it was before.
async fn seen(
    tx: &mut Tx<'_>,
    openid: &OpenId,
    at: DateTime<Utc>,
    presence: Presence,
) -> anyhow::Result<UserRow> {
    let before = db::users::lock(tx, openid.as_str()).await?;
    db::users::apply(tx, openid.as_str(), at, presence).await?;
    Ok(before)
}

fn left_after(before: &UserRow, at: DateTime<Utc>) -> bool {
    !before.subscribed && before.state_at.is_some_and(|s| s > at)
}

async fn scan(
    tx: &mut Tx<'_>,
    openid: &OpenId,
    at: DateTime<Utc>,
    scene_key: &str,
) -> anyhow::Result<(&'static str, Option<String>)> {
    // A SCAN is only pushed to followers: it is evidence of following at `at`.
    seen(
        tx,
        openid,
        at,
        Presence {
            following: true,
            state: Some(true),
        },
    )
    .await?;
    if let Ok(scene) = Scene::parse(scene_key) {
        if let Some(code) = db::codes::by_scene(&mut **tx, &scene).await? {
            db::codes::count_use(tx, code.id, false).await?;
        }
    }
    Ok(("scan", None))
}

async fn unsubscribe(
    tx: &mut Tx<'_>,
    event_id: i64,
    openid: &OpenId,
    at: DateTime<Utc>,
) -> anyhow::Result<(&'static str, Option<String>)> {
    seen(
        tx,
        openid,
        at,
        Presence {
            following: false,
            state: Some(false),
        },
    )
    .await?;
    let mut revoked = 0;
    for r in db::referrals::revocable(tx, openid.as_str(), at).await? {
        revoke_one(
            tx,
            r.id,
            r.campaign_id,
            &r.inviter_openid,
            r.revoke_rewards,
            Some(event_id),
            at,
        )
        .await?;
        revoked += 1;
    }
    Ok((
        if revoked > 0 {
            "revoked"
        } else {
            "unsubscribed"
        },
        None,
    ))
}

async fn revoke_one(
    tx: &mut Tx<'_>,
    referral_id: i64,
    campaign_id: i64,
    inviter: &str,
    revoke_rewards: bool,
    event_id: Option<i64>,
    at: DateTime<Utc>,
) -> anyhow::Result<()> {
    if db::referrals::revoke(tx, referral_id, event_id, at).await? {
        let count = db::referrals::recount(tx, campaign_id, inviter).await?;
        if revoke_rewards {
            db::referrals::revoke_rewards_above(tx, campaign_id, inviter, count).await?;
        }
    }
    Ok(())
}

async fn enqueue_message(
    tx: &mut Tx<'_>,
    openid: &str,
    text: &str,
    template_id: Option<&str>,
    about: serde_json::Value,
) -> anyhow::Result<()> {
    let payload =
        json!({ "openid": openid, "text": text, "template_id": template_id, "about": about });
    db::outbox::enqueue(tx, JOB_MESSAGE, &payload)
        .await
        .context("queueing a message")
}
