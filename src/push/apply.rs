//! Writing a batch: one transaction of set-based statements. Rows are taken in one global
//! order — followers, events, the ledger, code counters, leaderboard rows, risk rows, grants,
//! delayed-reward rows — each table's rows sorted by key, so batches on any number of instances
//! wait for each other but never in a cycle. Nothing in here calls WeChat or Redis.

use std::collections::{BTreeMap, HashMap, HashSet};

use anyhow::Context;
use chrono::{DateTime, Utc};
use sqlx::PgPool;

use super::campaigns::CampaignCache;
use super::hooks;
use super::incoming::{Incoming, Kind};
use super::plan::{self, Known, Plan, PlannedCredit};
use crate::db::outbox::JobKind;
use crate::db::{self, Tx};
use crate::domain::Outcome;
use crate::domain::{CampaignId, OpenId, Scene};
use crate::poster::delivery::{self, PosterJob};
use crate::referral::rules::{CampaignRules, Code, CodeOwner, Follower};
use crate::referral::texts::{fill, inviter_phrase};
use crate::wechat::allowance::Allowance;

/// What a batch came to, push by push (in the batch's order).
#[derive(Debug)]
pub struct Applied {
    pub outcomes: Vec<Outcome>,
    /// The passive reply to each push, if any (the welcome naming the inviter).
    pub replies: Vec<Option<String>>,
    /// The fallback outbox job of each poster request.
    pub poster_jobs: Vec<Option<i64>>,
    /// Work for the outbox worker was queued, due now.
    pub queued: bool,
}

/// Another transaction recorded one of the batch's pushes between our check and our insert:
/// the batch is applied again from the start, and sees it as recorded.
#[derive(Debug, thiserror::Error)]
#[error("a push of this batch was recorded concurrently")]
pub struct RecordedMeanwhile;

/// The push writer applying a batch.
#[derive(Debug, Clone, Copy)]
pub struct Writer {
    /// Names the writer's own rows of the account's follow counts, which its batches add to.
    pub id: i16,
    /// How long a new notice to an inviter waits for more news to join it.
    pub notice_delay: std::time::Duration,
}

/// Applies a batch in one transaction.
pub async fn apply(
    pool: &PgPool,
    campaigns: &CampaignCache,
    pushes: &[Incoming],
    writer: Writer,
) -> anyhow::Result<Applied> {
    let mut tx = pool.begin().await.context("starting the batch")?;
    let applied = write(&mut tx, campaigns, pushes, writer).await?;
    tx.commit().await.context("committing the batch")?;
    Ok(applied)
}

async fn write(
    tx: &mut Tx<'_>,
    cache: &CampaignCache,
    pushes: &[Incoming],
    writer: Writer,
) -> anyhow::Result<Applied> {
    // A push is about its sender: holding every follower the batch concerns first makes an
    // equal push elsewhere wait for this batch (or this one for it).
    let concerned: Vec<&OpenId> = pushes
        .iter()
        .filter(|p| p.concerns_follower())
        .map(|p| &p.openid)
        .collect();
    let keys: Vec<&str> = pushes.iter().map(|p| p.dedupe_key.as_str()).collect();
    let known = db::batch::known(tx, &concerned, &keys, &scenes(pushes))
        .await
        .context("locking the followers, checking for retries and looking up scenes")?;
    let followers: HashMap<OpenId, Follower> = known
        .followers
        .into_iter()
        .filter_map(|row| Some((OpenId::parse(&row.openid).ok()?, follower(row))))
        .collect();
    let recorded: HashSet<String> = known.recorded.into_iter().collect();
    let webhooks = known.webhooks;
    let campaigns = cache
        .at_version(tx, known.campaign_version)
        .await
        .context("loading the campaigns")?;
    let codes = codes(known.codes);

    let plan = plan::plan(
        pushes,
        Known {
            followers: &followers,
            recorded: &recorded,
            codes: &codes,
            campaigns: &campaigns,
        },
    );
    let mut outcomes = plan.outcomes.clone();

    // The facts: events, presence and credits in one statement; then revocations (which may
    // reverse credits of this same batch).
    let (events, credited, refused) = record(tx, pushes, &plan).await?;
    let revoked = revoke(tx, pushes, &plan.unsubscribes, &credited, &events).await?;
    let mut corrections: Vec<(i64, &str)> = Vec::new();
    for (pushes_of, outcome) in [
        (refused, Outcome::AlreadyCredited),
        (revoked.by_push.clone(), Outcome::Revoked),
    ] {
        for i in pushes_of {
            outcomes[i] = outcome;
            corrections.extend(events.of(i).map(|e| (e, outcome.as_str())));
        }
    }
    db::events::set_outcomes(tx, &corrections)
        .await
        .context("correcting outcomes")?;
    let poster_jobs = queue_posters(tx, pushes, &plan.posters).await?;
    record_subscriptions(tx, pushes, &plan, &events).await?;

    // The rows every batch shares — code counters, leaderboard rows, notice jobs — are taken
    // last, so they are held for as little as possible: only the statements from here to the
    // commit.
    let mut inviters: Vec<&OpenId> = credited.iter().map(|(c, _)| &c.inviter).collect();
    inviters.sort();
    inviters.dedup();
    let interactions = super::risk::first_interactions(&followers, plan.followers.iter());
    let observation = super::risk::observation(&credited, &revoked.lost, interactions);
    let (counts, observed) = count(
        tx,
        &plan,
        &credited,
        &revoked,
        &campaigns,
        &inviters,
        writer,
        &observation,
    )
    .await?;
    let screen =
        super::risk::screen(tx, &campaigns, &credited, &revoked.lost, observed, &counts).await?;
    let rewarded: Vec<(&PlannedCredit, i64)> = credited
        .iter()
        .filter(|(c, _)| !screen.withholds(c.campaign, &c.inviter))
        .copied()
        .collect();
    let grants = grant_rewards(tx, &campaigns, &rewarded, &counts).await?;
    let report = hooks::Report {
        pushes,
        applied: &plan.record,
        codes: &codes,
        credits: credited.iter().map(|(_, id)| *id).collect(),
        revocations: revoked
            .referrals
            .iter()
            .chain(&screen.cancelled)
            .copied()
            .collect(),
        grants,
        events: Vec::new(),
        webhooks,
    };
    hooks::report(tx, report).await?;

    let mut replies = vec![None; pushes.len()];
    for (c, _) in &credited {
        if let Some(rules) = campaign(&campaigns, c.campaign) {
            let inviter = inviter_phrase(c.inviter_name.as_deref());
            replies[c.push] = Some(fill(&rules.welcome_text, &[("inviter", &inviter)]));
        }
    }
    Ok(Applied {
        outcomes,
        replies,
        poster_jobs,
        // A notice is due only after the delay; the worker's own poll finds it then. Waking
        // it for every credited batch would cost a claim per batch that finds nothing due.
        queued: !inviters.is_empty() && writer.notice_delay.is_zero(),
    })
}

/// The events rows the batch wrote, by push.
struct EventIds<'a> {
    by_key: HashMap<String, i64>,
    pushes: &'a [Incoming],
}

impl EventIds<'_> {
    fn of(&self, push: usize) -> Option<i64> {
        self.by_key.get(&self.pushes[push].dedupe_key).copied()
    }
}

/// Writes the batch's facts in one statement: its events with the outcomes decided for them,
/// the followers' presence and the planned credits. Returns the events written, the credits
/// written (with their referral id) and the pushes whose invitee the ledger already had in
/// that campaign.
async fn record<'a, 'p>(
    tx: &mut Tx<'_>,
    pushes: &'a [Incoming],
    plan: &'p Plan,
) -> anyhow::Result<(EventIds<'a>, Vec<(&'p PlannedCredit, i64)>, Vec<usize>)> {
    if plan.record.is_empty() {
        let none = EventIds {
            by_key: HashMap::new(),
            pushes,
        };
        return Ok((none, Vec::new(), Vec::new()));
    }
    let events: Vec<db::events::NewEvent<'_>> = plan
        .record
        .iter()
        .map(|&i| {
            let p = &pushes[i];
            db::events::NewEvent {
                dedupe_key: &p.dedupe_key,
                openid: &p.openid,
                create_time: p.at,
                msg_type: &p.fields.msg_type,
                event: p.fields.event.as_deref(),
                event_key: p.fields.event_key.as_deref(),
                ticket: p.fields.ticket.as_deref(),
                outcome: plan.outcomes[i].as_str(),
            }
        })
        .collect();
    let presence: Vec<db::users::PresenceState<'_>> = plan
        .followers
        .iter()
        .map(|(openid, f)| db::users::PresenceState {
            openid,
            subscribed: f.subscribed,
            followed_since: f.followed_since,
            state_at: f.state_at,
            last_interaction_at: f.last_interaction_at,
            cs_left: f.allowance.left,
            cs_until: DateTime::from_timestamp(f.allowance.until, 0)
                .filter(|_| f.allowance.until > 0),
            cs_opened_at: DateTime::from_timestamp(f.allowance.opened_at, 0)
                .filter(|_| f.allowance.opened_at > 0),
        })
        .collect();
    let mut planned: Vec<&PlannedCredit> = plan.credits.iter().collect();
    planned.sort_by(|a, b| (a.campaign.0, &a.invitee).cmp(&(b.campaign.0, &b.invitee)));
    let credits: Vec<db::batch::CreditOf<'_>> = planned
        .iter()
        .map(|c| db::batch::CreditOf {
            credit: db::referrals::NewCredit {
                campaign: c.campaign,
                invitee: &c.invitee,
                inviter: &c.inviter,
                scene: &c.scene,
                at: c.at,
            },
            dedupe_key: &pushes[c.push].dedupe_key,
        })
        .collect();
    let written = db::batch::record(tx, &events, &presence, &credits)
        .await
        .context("recording the pushes")?;
    if written.events.len() != events.len() {
        return Err(RecordedMeanwhile.into());
    }
    let referral_of: HashMap<(CampaignId, String), i64> = written
        .credits
        .into_iter()
        .map(|(id, campaign, invitee)| ((campaign, invitee), id))
        .collect();
    let mut credited = Vec::new();
    let mut refused = Vec::new();
    for c in planned {
        match referral_of.get(&(c.campaign, c.invitee.to_string())) {
            Some(id) => credited.push((c, *id)),
            None => refused.push(c.push),
        }
    }
    let events = EventIds {
        by_key: written.events.into_iter().map(|(id, k)| (k, id)).collect(),
        pushes,
    };
    Ok((events, credited, refused))
}

/// Subscription notices the followers accepted (each allows one notice) or withdrew.
async fn record_subscriptions(
    tx: &mut Tx<'_>,
    pushes: &[Incoming],
    plan: &Plan,
    events: &EventIds<'_>,
) -> anyhow::Result<()> {
    let choices: Vec<db::notices::Choice<'_>> = plan
        .subscriptions
        .iter()
        .map(|(i, template, accepted)| db::notices::Choice {
            openid: &pushes[*i].openid,
            template_id: template,
            accepted: *accepted,
            at: pushes[*i].at,
            event_id: events.of(*i),
        })
        .collect();
    db::notices::record_choices(tx, &choices)
        .await
        .context("recording subscription choices")
}

/// Queues each poster request's fallback job: sent even if this process dies before
/// answering; the callback cancels it when its passive reply carries the poster.
async fn queue_posters(
    tx: &mut Tx<'_>,
    pushes: &[Incoming],
    posters: &[usize],
) -> anyhow::Result<Vec<Option<i64>>> {
    let mut jobs = vec![None; pushes.len()];
    for &i in posters {
        let job = serde_json::to_value(PosterJob {
            openid: pushes[i].openid.to_string(),
        })?;
        jobs[i] = Some(
            db::outbox::enqueue_after(tx, JobKind::Poster, &job, delivery::FALLBACK_DELAY_SECS)
                .await
                .context("queueing the poster")?,
        );
    }
    Ok(jobs)
}

/// Counts the batch into the rows every batch shares: code counters, then the leaderboard
/// rows — every row touched, in one order, before any recount reads the ledger — then the
/// inviters' notice jobs and risk counters; and takes rewards back where revocations dropped a
/// count below a tier. Returns each touched row's count, and the risk counters observed.
#[allow(clippy::too_many_arguments)]
async fn count(
    tx: &mut Tx<'_>,
    plan: &Plan,
    credited: &[(&PlannedCredit, i64)],
    revoked: &Revoked,
    campaigns: &[CampaignRules],
    notify: &[&OpenId],
    writer: Writer,
    observation: &db::risk::Observation<'_>,
) -> anyhow::Result<(HashMap<(CampaignId, String), i32>, Vec<db::risk::Observed>)> {
    let uses: Vec<(i64, i64, i64)> = plan
        .code_uses
        .iter()
        .map(|(id, (scans, follows))| (*id, *scans, *follows))
        .collect();
    let mut touched: BTreeMap<(i64, &OpenId), Added> = BTreeMap::new();
    for (c, _) in credited {
        let row = touched.entry((c.campaign.0, &c.inviter)).or_default();
        row.count += 1;
        row.latest = row.latest.max(Some(c.at));
    }
    for (campaign, inviter) in &revoked.rows {
        touched.entry((campaign.0, inviter)).or_default();
    }
    let deltas: Vec<db::referrals::StatsDelta<'_>> = touched
        .iter()
        .map(|((campaign, inviter), added)| db::referrals::StatsDelta {
            campaign: CampaignId(*campaign),
            inviter,
            added: added.count,
            latest: added.latest,
        })
        .collect();
    let follows: Vec<(i64, i32)> = plan.follows.iter().map(|(b, n)| (*b, *n)).collect();
    let nothing = uses.is_empty()
        && deltas.is_empty()
        && notify.is_empty()
        && follows.is_empty()
        && observation.is_empty();
    let (mut counts, observed): (HashMap<(CampaignId, String), i32>, _) = if nothing {
        (HashMap::new(), Vec::new())
    } else {
        let counted = db::batch::count(
            tx,
            &uses,
            &deltas,
            notify,
            writer.notice_delay,
            &follows,
            writer.id,
            observation,
        )
        .await
        .context("counting codes, the leaderboard, notices and risk")?;
        let counts = counted
            .stats
            .into_iter()
            .map(|(c, o, n)| ((c, o), n))
            .collect();
        (counts, counted.observed)
    };
    let recount_rows: Vec<(CampaignId, &OpenId)> =
        revoked.rows.iter().map(|(c, o)| (*c, o)).collect();
    for (c, o, n) in db::referrals::recount(tx, &recount_rows)
        .await
        .context("recounting after revocations")?
    {
        counts.insert((c, o), n);
    }
    let take_back: Vec<(CampaignId, &str, i32)> = revoked
        .rows
        .iter()
        .filter(|(c, _)| campaign(campaigns, *c).is_some_and(|c| c.revoke_rewards))
        .map(|(c, o)| {
            (
                *c,
                o.as_str(),
                counts.get(&(*c, o.to_string())).copied().unwrap_or(0),
            )
        })
        .collect();
    db::referrals::revoke_rewards_above(tx, &take_back)
        .await
        .context("taking rewards back")?;
    Ok((counts, observed))
}

/// New credits for one leaderboard row.
#[derive(Default)]
struct Added {
    count: i32,
    latest: Option<DateTime<Utc>>,
}

fn follower(row: db::users::UserRow) -> Follower {
    Follower {
        nickname: row.nickname,
        subscribed: row.subscribed,
        followed_since: row.followed_since,
        state_at: row.state_at,
        imported: row.imported_at.is_some(),
        last_interaction_at: row.last_interaction_at,
        allowance: Allowance {
            left: row.cs_left,
            until: row.cs_until.map_or(0, |t| t.timestamp()),
            opened_at: row.cs_opened_at.map_or(0, |t| t.timestamp()),
        },
    }
}

/// The scenes the batch's pushes name.
fn scenes(pushes: &[Incoming]) -> Vec<&Scene> {
    pushes
        .iter()
        .filter_map(|p| match &p.kind {
            Kind::Subscribe { scene: Some(s) } | Kind::Scan { scene: s } => s.scene.as_ref(),
            _ => None,
        })
        .collect()
}

/// The codes the batch's scenes name, by scene.
fn codes(rows: Vec<db::codes::SceneCode>) -> HashMap<Scene, Code> {
    rows.into_iter()
        .filter_map(|row| {
            let scene = match (row.scene_id, &row.scene_str) {
                (Some(id), _) => Scene::Id(i64::from(id)),
                (None, Some(s)) => Scene::parse(s).ok()?,
                (None, None) => return None,
            };
            let owner = match (row.owner_openid, row.channel_id) {
                (Some(openid), _) => CodeOwner::Follower {
                    openid: OpenId::parse(&openid).ok()?,
                    nickname: row.owner_nickname,
                },
                (None, Some(channel)) => CodeOwner::Channel(channel),
                (None, None) => return None,
            };
            let code = Code {
                id: row.id,
                owner,
                expires_at: if row.permanent { None } else { row.expires_at },
            };
            Some((scene, code))
        })
        .collect()
}

fn campaign(campaigns: &[CampaignRules], id: CampaignId) -> Option<&CampaignRules> {
    campaigns.iter().find(|c| c.id == id)
}

/// A credit to revoke: when, the unsubscribe that does it (if pushed in this batch), and the
/// leaderboard row it counts in.
struct Revocation {
    at: DateTime<Utc>,
    event: Option<i64>,
    row: (CampaignId, OpenId),
}

struct Revoked {
    /// The referrals revoked.
    referrals: Vec<i64>,
    /// Unsubscribe pushes that revoked a credit.
    by_push: Vec<usize>,
    /// Leaderboard rows that lost a credit.
    rows: Vec<(CampaignId, OpenId)>,
    /// The row of each credit revoked (one entry per friend who left).
    lost: Vec<(CampaignId, OpenId)>,
}

/// Revokes the credits that unsubscribes reverse, and the credits just written for followers
/// who had already left (their unsubscribe was pushed first).
async fn revoke(
    tx: &mut Tx<'_>,
    pushes: &[Incoming],
    unsubscribes: &[usize],
    credited: &[(&PlannedCredit, i64)],
    events: &EventIds<'_>,
) -> anyhow::Result<Revoked> {
    let mut wanted: BTreeMap<i64, Revocation> = BTreeMap::new();
    for (c, referral) in credited {
        if let Some(left) = c.left_at {
            wanted.insert(
                *referral,
                Revocation {
                    at: left,
                    event: None,
                    row: (c.campaign, c.inviter.clone()),
                },
            );
        }
    }
    let leaves: Vec<(&OpenId, i64, DateTime<Utc>)> = unsubscribes
        .iter()
        .filter_map(|&i| Some((&pushes[i].openid, events.of(i)?, pushes[i].at)))
        .collect();
    for r in db::referrals::revocable(tx, &leaves)
        .await
        .context("finding credits to revoke")?
    {
        let Ok(inviter) = OpenId::parse(&r.inviter_openid) else {
            continue;
        };
        // The earliest unsubscribe revokes, as it would have one push at a time.
        let earlier = wanted.get(&r.id).is_some_and(|w| w.at <= r.left_at);
        if !earlier {
            wanted.insert(
                r.id,
                Revocation {
                    at: r.left_at,
                    event: Some(r.event_id),
                    row: (r.campaign_id, inviter),
                },
            );
        }
    }
    let rows: Vec<(i64, Option<i64>, DateTime<Utc>)> = wanted
        .iter()
        .map(|(referral, w)| (*referral, w.event, w.at))
        .collect();
    let done = db::referrals::revoke_many(tx, &rows)
        .await
        .context("writing revocations")?;
    let push_of_event: HashMap<i64, usize> = unsubscribes
        .iter()
        .filter_map(|&i| Some((events.of(i)?, i)))
        .collect();
    let mut by_push = Vec::new();
    let mut stats_rows = Vec::new();
    for &referral in &done {
        if let Some(w) = wanted.remove(&referral) {
            by_push.extend(w.event.and_then(|e| push_of_event.get(&e).copied()));
            stats_rows.push(w.row);
        }
    }
    by_push.sort_unstable();
    by_push.dedup();
    let lost = stats_rows.clone();
    stats_rows.sort_by(|a, b| (a.0 .0, &a.1).cmp(&(b.0 .0, &b.1)));
    stats_rows.dedup();
    Ok(Revoked {
        referrals: done,
        by_push,
        rows: stats_rows,
        lost,
    })
}

/// Grants the reward tiers the batch's credits reached (drawing a code from the tier's pool
/// where it has one); the inviters' notice jobs tell them. Returns the grants made. In a
/// campaign that delays rewards the tiers are deferred instead (one statement for the batch),
/// counting from the CreateTime of the inviter's latest credit in it.
async fn grant_rewards(
    tx: &mut Tx<'_>,
    campaigns: &[CampaignRules],
    credited: &[(&PlannedCredit, i64)],
    counts: &HashMap<(CampaignId, String), i32>,
) -> anyhow::Result<Vec<i64>> {
    let mut made = Vec::new();
    let mut deferred = Vec::new();
    let mut by_inviter: BTreeMap<(i64, &OpenId), DateTime<Utc>> = BTreeMap::new();
    for (c, _) in credited {
        let latest = by_inviter.entry((c.campaign.0, &c.inviter)).or_insert(c.at);
        *latest = (*latest).max(c.at);
    }
    let mut granted: HashSet<(i64, String)> = HashSet::new();
    let with_tiers: BTreeMap<i64, Vec<&OpenId>> =
        by_inviter
            .keys()
            .fold(BTreeMap::new(), |mut acc, (campaign_id, inviter)| {
                let has_tiers = campaign(campaigns, CampaignId(*campaign_id))
                    .is_some_and(|c| !c.tiers.is_empty());
                if has_tiers {
                    acc.entry(*campaign_id)
                        .or_insert_with(Vec::new)
                        .push(*inviter);
                }
                acc
            });
    for (campaign_id, inviters) in &with_tiers {
        granted.extend(
            db::campaigns::granted_among(tx, CampaignId(*campaign_id), inviters)
                .await
                .context("reading grants")?,
        );
    }
    for ((campaign_id, inviter), reached_at) in by_inviter {
        let Some(rules) = campaign(campaigns, CampaignId(campaign_id)) else {
            continue;
        };
        let total = counts
            .get(&(rules.id, inviter.to_string()))
            .copied()
            .unwrap_or(0);
        for tier in rules.tiers.iter().filter(|t| t.threshold <= total) {
            if granted.contains(&(tier.id, inviter.to_string())) {
                continue;
            }
            if rules.reward_delay_days > 0 {
                deferred.push(db::delayed::Deferred {
                    tier_id: tier.id,
                    campaign_id,
                    openid: inviter,
                    reached_at,
                });
                continue;
            }
            let row = db::campaigns::Tier {
                id: tier.id,
                campaign_id,
                threshold: tier.threshold,
                name: tier.name.clone(),
                uses_codes: tier.uses_codes,
                // Granting reads neither: they only matter once the follower claims it.
                claim_instructions: String::new(),
                redeem_in_store: false,
            };
            let grant = db::campaigns::grant(tx, &row, inviter)
                .await
                .context("granting a reward")?;
            made.extend(grant.map(|g| g.id));
        }
    }
    db::delayed::defer(tx, &deferred)
        .await
        .context("deferring delayed rewards")?;
    Ok(made)
}
