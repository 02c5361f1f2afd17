//! What a batch of pushes tells other systems: the scans and follows through Fission's codes,
//! the credits, revocations and reward grants it decided (as webhook events), and the binding
//! codes its scans complete — all in one statement, in the batch's transaction, and none when
//! the batch has nothing to report.

use std::collections::HashMap;

use anyhow::Context;
use serde_json::json;

use super::incoming::{Incoming, Kind};
use crate::db::webhooks::{self, BindingScan, Fact};
use crate::db::Tx;
use crate::domain::Scene;
use crate::referral::bindings::SCENE_PREFIX;
use crate::referral::rules::{Code, CodeOwner};

/// What the batch decided that other systems hear about.
pub struct Report<'a> {
    pub pushes: &'a [Incoming],
    /// The pushes applied (each once; duplicates are not).
    pub applied: &'a [usize],
    pub codes: &'a HashMap<Scene, Code>,
    /// Referrals credited, revoked, and reward grants made, by id.
    pub credits: Vec<i64>,
    pub revocations: Vec<i64>,
    pub grants: Vec<i64>,
    /// Further events the batch decided, recorded after the scans and before the credits
    /// (e.g. the risk policies' `reward.held`, `inviter.flagged`).
    pub events: Vec<Fact<'a>>,
    /// Some webhook endpoint is registered.
    pub webhooks: bool,
}

pub async fn report(tx: &mut Tx<'_>, d: Report<'_>) -> anyhow::Result<()> {
    let mut scans = Vec::new();
    let mut facts = Vec::new();
    let mut events = d.events;
    for &i in d.applied {
        let push = &d.pushes[i];
        let (key, event) = match &push.kind {
            Kind::Subscribe { scene: Some(key) } => (key, "subscribe"),
            Kind::Scan { scene: key } => (key, "SCAN"),
            _ => continue,
        };
        let Some(scene) = &key.scene else { continue };
        if let Scene::Str(s) = scene {
            if s.as_str().starts_with(SCENE_PREFIX) {
                scans.push(BindingScan {
                    scene_str: s.as_str(),
                    openid: push.openid.as_str(),
                    event,
                    at: push.at,
                });
                continue;
            }
        }
        if !d.webhooks {
            continue;
        }
        if let Some(code) = d.codes.get(scene) {
            let (owner, channel) = match &code.owner {
                CodeOwner::Follower { openid, .. } => (Some(openid.as_str()), None),
                CodeOwner::Channel(id) => (None, Some(*id)),
            };
            facts.push(Fact {
                event_type: "code.scanned",
                order_key: push.openid.as_str(),
                data: json!({
                    "openid": push.openid.as_str(),
                    "event": event,
                    "scene": key.raw,
                    "code_id": code.id,
                    "owner_openid": owner,
                    "channel_id": channel,
                    "at": push.at,
                }),
            });
        }
    }
    facts.append(&mut events);
    let (credits, revocations, grants) = if d.webhooks {
        (d.credits, d.revocations, d.grants)
    } else {
        facts.clear();
        (Vec::new(), Vec::new(), Vec::new())
    };
    if scans.is_empty()
        && facts.is_empty()
        && credits.is_empty()
        && revocations.is_empty()
        && grants.is_empty()
    {
        return Ok(());
    }
    webhooks::record_batch(tx, &facts, &credits, &revocations, &grants, &scans)
        .await
        .context("recording webhook events and completing bindings")?;
    Ok(())
}
