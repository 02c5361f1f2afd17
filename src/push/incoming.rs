//! A verified push as the push path sees it: who, when, what it means, and the raw fields the
//! events table keeps. Built once from the protocol's `Push`; nothing after this reads XML.

use chrono::{DateTime, Utc};

use crate::config::Settings;
use crate::domain::{InvalidValue, OpenId, Scene};
use crate::wechat::allowance::Opener;
use crate::wechat::message::{Push, PushKind};

/// The scene a push carried: as sent, and what it parses to (`None` when it cannot name any
/// code Fission issues).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SceneKey {
    pub raw: String,
    pub scene: Option<Scene>,
}

impl SceneKey {
    fn new(raw: &str) -> SceneKey {
        SceneKey {
            raw: raw.to_string(),
            scene: Scene::parse(raw).ok(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// A follow; `scene` when it came through a parametric code.
    Subscribe {
        scene: Option<SceneKey>,
    },
    /// A follower scanned a parametric code.
    Scan {
        scene: SceneKey,
    },
    Unsubscribe,
    /// A message or a menu click; `wants_poster` for the poster keyword or menu key.
    Interaction {
        opener: Opener,
        wants_poster: bool,
    },
    /// The follower accepted (or turned down) subscription notices, by template id.
    Subscriptions {
        accepted: Vec<String>,
        rejected: Vec<String>,
    },
    /// Anything else: recorded, nothing decided.
    Other,
}

/// The push's fields as the events table records them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventFields {
    pub msg_type: String,
    pub event: Option<String>,
    pub event_key: Option<String>,
    pub ticket: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incoming {
    pub openid: OpenId,
    /// The push's CreateTime.
    pub at: DateTime<Utc>,
    /// WeChat retries a push with the same key; the events table keeps each key once.
    pub dedupe_key: String,
    pub kind: Kind,
    pub fields: EventFields,
}

impl Incoming {
    pub fn from_push(push: &Push, settings: &Settings) -> Result<Incoming, InvalidValue> {
        let openid = OpenId::parse(&push.from_user)?;
        let at = DateTime::from_timestamp(push.create_time, 0)
            .ok_or_else(|| InvalidValue("CreateTime out of range".into()))?;
        let kind = match push.kind() {
            PushKind::Subscribe { scene, .. } => Kind::Subscribe {
                scene: scene.map(SceneKey::new),
            },
            PushKind::Scan { scene, .. } => Kind::Scan {
                scene: SceneKey::new(scene),
            },
            PushKind::Unsubscribe => Kind::Unsubscribe,
            kind @ (PushKind::Click { .. } | PushKind::Text { .. }) => Kind::Interaction {
                opener: match kind {
                    PushKind::Click { .. } => Opener::Action,
                    _ => Opener::Message,
                },
                wants_poster: crate::poster::delivery::asks_for_poster(settings, &kind),
            },
            PushKind::Message => Kind::Interaction {
                opener: Opener::Message,
                wants_poster: false,
            },
            PushKind::Subscriptions { choices } => {
                let (accepted, rejected): (Vec<_>, Vec<_>) =
                    choices.iter().partition(|c| c.accepted());
                Kind::Subscriptions {
                    accepted: accepted
                        .into_iter()
                        .map(|c| c.template_id.clone())
                        .collect(),
                    rejected: rejected
                        .into_iter()
                        .map(|c| c.template_id.clone())
                        .collect(),
                }
            }
            PushKind::Other => Kind::Other,
        };
        Ok(Incoming {
            openid,
            at,
            dedupe_key: push.dedupe_key(),
            kind,
            fields: EventFields {
                msg_type: push.msg_type.clone(),
                event: push.event.clone(),
                event_key: push.event_key.clone(),
                ticket: push.ticket.clone(),
            },
        })
    }

    /// Pushes that say something about the follower lock their row; the rest only record.
    pub fn concerns_follower(&self) -> bool {
        !matches!(self.kind, Kind::Other)
    }
}
