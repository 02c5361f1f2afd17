//! The words of risk review: where an inviter stands, what a campaign's policy does about
//! signals, what a decision did, and a signal with its evidence. Text forms are what the
//! database and the JSON API carry.

use chrono::{DateTime, Utc};

/// Where an inviter stands in a campaign, least to most severe (the order escalation follows).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RiskStatus {
    Ok,
    /// A signal fired; nothing is withheld.
    Flagged,
    /// Rewards reached from now on wait for an operator.
    Held,
    /// Credits cancelled, rewards taken back, no reward until unblocked.
    Blocked,
}

impl RiskStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RiskStatus::Ok => "ok",
            RiskStatus::Flagged => "flagged",
            RiskStatus::Held => "held",
            RiskStatus::Blocked => "blocked",
        }
    }

    pub fn parse(raw: &str) -> Option<RiskStatus> {
        match raw {
            "ok" => Some(RiskStatus::Ok),
            "flagged" => Some(RiskStatus::Flagged),
            "held" => Some(RiskStatus::Held),
            "blocked" => Some(RiskStatus::Blocked),
            _ => None,
        }
    }

    /// Rewards are not granted while the inviter stands here.
    pub fn withholds(self) -> bool {
        self >= RiskStatus::Held
    }
}

/// What a campaign does when a signal fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RiskPolicy {
    /// Mark the inviter; rewards flow as usual.
    Flag,
    /// Mark the inviter and hold the rewards they reach for an operator.
    Hold,
    /// As `Hold`, and block the inviter outright above the hard threshold.
    Block,
}

impl RiskPolicy {
    pub const ALL: [RiskPolicy; 3] = [RiskPolicy::Flag, RiskPolicy::Hold, RiskPolicy::Block];

    pub fn as_str(self) -> &'static str {
        match self {
            RiskPolicy::Flag => "flag",
            RiskPolicy::Hold => "hold",
            RiskPolicy::Block => "block",
        }
    }

    pub fn parse(raw: &str) -> Option<RiskPolicy> {
        RiskPolicy::ALL.into_iter().find(|p| p.as_str() == raw)
    }
}

/// A decision about an inviter, automatic (flag, hold, block) or an operator's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RiskAction {
    Flag,
    Hold,
    Block,
    /// Clears the inviter and grants the rewards they reached.
    Approve,
    /// Keeps the inviter's rewards withheld for good (they stay held).
    Reject,
    /// Lifts a block: the inviter earns again from now on.
    Unblock,
}

impl RiskAction {
    pub const ALL: [RiskAction; 6] = [
        RiskAction::Flag,
        RiskAction::Hold,
        RiskAction::Block,
        RiskAction::Approve,
        RiskAction::Reject,
        RiskAction::Unblock,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RiskAction::Flag => "flag",
            RiskAction::Hold => "hold",
            RiskAction::Block => "block",
            RiskAction::Approve => "approve",
            RiskAction::Reject => "reject",
            RiskAction::Unblock => "unblock",
        }
    }

    pub fn parse(raw: &str) -> Option<RiskAction> {
        RiskAction::ALL.into_iter().find(|a| a.as_str() == raw)
    }

    /// Where the inviter stands after this decision.
    pub fn status(self) -> RiskStatus {
        match self {
            RiskAction::Flag => RiskStatus::Flagged,
            RiskAction::Hold | RiskAction::Reject => RiskStatus::Held,
            RiskAction::Block => RiskStatus::Blocked,
            RiskAction::Approve | RiskAction::Unblock => RiskStatus::Ok,
        }
    }
}

/// A signal that fired, with its evidence: the value seen, the threshold it passed, when.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Signal {
    pub name: String,
    pub value: f64,
    pub threshold: f64,
    pub at: DateTime<Utc>,
}
