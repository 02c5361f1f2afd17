//! Sends a follower's notice: reads what they have not been told and how they can be reached,
//! lets `referral::notices` pick the channel and write the message, sends it, and records it.
//! When WeChat refuses a channel Fission thought open (it cannot see everything the follower
//! did), that is remembered and the next channel is tried at once — one refused call, never a
//! stream of retries into 45047/45015. No channel open: the job waits for the follower.

use std::collections::BTreeMap;

use crate::db;
use crate::db::notices::{Learned, Told};
use crate::db::outbox::Job;
use crate::domain::OpenId;
use crate::jobs::outbox::{classify, Failure};
use crate::referral::notices::{self, CampaignNews, Channel, Reach, RewardNews};
use crate::state::AppState;
use crate::wechat::allowance::{Allowance, OUT_OF_COUNT, OUT_OF_TIME};
use crate::wechat::WechatError;

/// WeChat: the follower has not accepted this subscription template (or used it up).
const NOT_ACCEPTED: i64 = 43101;
/// WeChat: the follower does not follow the account.
const NOT_FOLLOWING: i64 = 43004;

/// Sends (or parks) the notice; on success the job's row is already updated.
pub async fn send(state: &AppState, job: &Job) -> Result<(), Failure> {
    let openid = job
        .payload
        .get("openid")
        .and_then(|o| o.as_str())
        .and_then(|o| OpenId::parse(o).ok())
        .ok_or_else(|| Failure::Permanent("notice without a valid openid".into()))?;
    let db_error = |e: sqlx::Error| Failure::Retry(format!("database: {e}"));
    let mut closed: Vec<&'static str> = Vec::new();
    loop {
        let (news, through, grants) = gather(state, &openid).await.map_err(db_error)?;
        if news.is_empty() {
            db::notices::nothing_to_tell(&state.pool, job.id)
                .await
                .map_err(db_error)?;
            return Ok(());
        }
        let credits: i32 = news.iter().map(|n| n.new_friends).sum();
        let reach = match db::notices::reach(&state.pool, &openid)
            .await
            .map_err(db_error)?
        {
            Some(row) => Reach {
                following: row.following,
                allowance: Allowance {
                    left: row.cs_left,
                    until: row.cs_until.map_or(0, |t| t.timestamp()),
                    opened_at: row.cs_opened_at.map_or(0, |t| t.timestamp()),
                },
                accepted: row.accepted,
            },
            None => Reach::default(),
        };
        let now = chrono::Utc::now().timestamp();
        let channel = notices::plan(&news, &reach, now, &closed);
        let page = format!("{}/invite", state.public_url);
        let (result, subscription) = match &channel {
            Channel::Wait => {
                db::notices::park(&state.pool, job.id, &openid, credits)
                    .await
                    .map_err(db_error)?;
                return Ok(());
            }
            Channel::Custom(text) => (state.wechat.send_text(openid.as_str(), text).await, None),
            Channel::Subscription { template_id, data } => (
                state
                    .wechat
                    .send_subscription(openid.as_str(), template_id, data, Some(&page))
                    .await,
                Some(template_id.as_str()),
            ),
            Channel::Template { template_id, data } => (
                state
                    .wechat
                    .send_template(openid.as_str(), template_id, data, Some(&page))
                    .await,
                None,
            ),
        };
        match result {
            Ok(()) => {
                db::notices::told(
                    &state.pool,
                    &Told {
                        job: job.id,
                        openid: &openid,
                        through: &through,
                        grants: &grants,
                        channel: channel.name(),
                        subscription,
                        credits,
                    },
                )
                .await
                .map_err(db_error)?;
                state
                    .metrics
                    .outbox
                    .with_label_values(&["notice", channel.name()])
                    .inc();
                return Ok(());
            }
            Err(e) => match refusal(&e) {
                Some(errcode) => {
                    tracing::info!(
                        channel = channel.name(),
                        errcode,
                        "WeChat refused a notice channel; trying the next"
                    );
                    let learned = match errcode {
                        OUT_OF_COUNT => Learned::AllowanceSpent,
                        OUT_OF_TIME => Learned::AllowanceOver,
                        NOT_ACCEPTED => Learned::NotSubscribed(subscription.unwrap_or_default()),
                        _ => Learned::Nothing,
                    };
                    db::notices::refused(
                        &state.pool,
                        &openid,
                        channel.name(),
                        &errcode.to_string(),
                        learned,
                    )
                    .await
                    .map_err(db_error)?;
                    closed.push(channel.name());
                }
                None => return Err(classify(e)),
            },
        }
    }
}

/// Errors that close one channel for this follower (another may still be open).
fn refusal(e: &WechatError) -> Option<i64> {
    e.errcode()
        .filter(|c| [OUT_OF_COUNT, OUT_OF_TIME, NOT_ACCEPTED, NOT_FOLLOWING].contains(c))
}

type Gathered = (Vec<CampaignNews>, Vec<(i64, i64)>, Vec<i64>);

/// Everything the follower has not been told, campaigns with a reward first.
async fn gather(state: &AppState, openid: &OpenId) -> sqlx::Result<Gathered> {
    let rows = db::notices::news(&state.pool, openid).await?;
    let grants = db::notices::untold_grants(&state.pool, openid).await?;
    let mut rewards: BTreeMap<i64, Vec<RewardNews>> = BTreeMap::new();
    for g in &grants {
        rewards.entry(g.campaign_id).or_default().push(RewardNews {
            name: g.name.clone(),
            code: g.code.clone(),
            out_of_stock: g.status == "out_of_stock",
        });
    }
    let mut news: Vec<CampaignNews> = Vec::new();
    let mut through = Vec::new();
    for row in rows {
        through.push((row.campaign_id, row.through));
        let item = CampaignNews {
            new_friends: i32::try_from(row.new_friends).unwrap_or(i32::MAX),
            latest_friend: row.latest_friend,
            total: row.total,
            next: row
                .next_threshold
                .zip(row.next_name)
                .map(|(threshold, name)| (threshold - row.total, name)),
            rewards: rewards.remove(&row.campaign_id).unwrap_or_default(),
            texts: row.texts,
        };
        if item.new_friends > 0 || !item.rewards.is_empty() {
            news.push(item);
        }
    }
    news.sort_by_key(|n| n.rewards.is_empty());
    let grant_ids = grants.iter().map(|g| g.id).collect();
    Ok((news, through, grant_ids))
}
