//! The push path, from a verified push to its answer:
//! parse (`incoming`: protocol to domain values) → gather (`batcher`: group commit) → decide
//! (`plan`: pure, over `referral::rules`) → write (`apply`: one transaction of set-based
//! statements through `db`) → answer each waiting request. Every push is durable before its
//! answer; no WeChat or Redis call happens while a database connection is held on this path.

pub mod apply;
pub mod batcher;
pub mod campaigns;
pub mod hooks;
pub mod incoming;
pub mod plan;
pub mod risk;

pub use crate::domain::Outcome;
pub use batcher::{BatchLimits, PushQueue};
pub use incoming::Incoming;

/// What one push came to, once its batch committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decided {
    pub outcome: Outcome,
    /// Text for the passive reply (the welcome naming the inviter).
    pub reply: Option<String>,
    /// The outbox job that sends the poster if the passive reply cannot carry it.
    pub poster_job: Option<i64>,
}
