//! What became of a push: recorded on its event row and counted in metrics.

/// The closed set of outcomes. The text form is what the events table and `/metrics` carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// A retry of a push already recorded: nothing changed.
    Duplicate,
    Credited,
    /// The invitee already has a credit in this campaign (the ledger's unique key decided).
    AlreadyCredited,
    ChannelFollow,
    UnknownScene,
    SelfInvite,
    NotNew,
    NoCampaign,
    /// A plain follow (no parametric code).
    Followed,
    Scan,
    Unsubscribed,
    /// An unsubscribe that revoked at least one credit.
    Revoked,
    /// A request for the poster (keyword or menu click).
    Poster,
    /// Another message or menu click.
    Interaction,
    /// A push Fission keeps but does not act on.
    Recorded,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Duplicate => "duplicate",
            Outcome::Credited => "credited",
            Outcome::AlreadyCredited => "already_credited",
            Outcome::ChannelFollow => "channel_follow",
            Outcome::UnknownScene => "unknown_scene",
            Outcome::SelfInvite => "self_invite",
            Outcome::NotNew => "not_new",
            Outcome::NoCampaign => "no_campaign",
            Outcome::Followed => "followed",
            Outcome::Scan => "scan",
            Outcome::Unsubscribed => "unsubscribed",
            Outcome::Revoked => "revoked",
            Outcome::Poster => "poster",
            Outcome::Interaction => "interaction",
            Outcome::Recorded => "recorded",
        }
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
