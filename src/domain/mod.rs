//! Value types for the concepts Fission handles. Each is parsed once, at the edge, and
//! cannot hold an invalid value afterwards: nothing downstream re-checks them.

mod ids;
mod notice_texts;
mod outcome;
mod risk;
mod scene;
pub mod time;

pub use ids::{CampaignId, OpenId};
pub use notice_texts::NoticeTexts;
pub use outcome::Outcome;
pub use risk::{RiskAction, RiskPolicy, RiskStatus, Signal};
pub use scene::{
    ExpireSeconds, PermanentSceneId, Scene, SceneStr, TemporarySceneId, BINDING_PREFIX,
};

/// Why a value was refused; the message is safe to show to whoever sent it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidValue(pub String);
