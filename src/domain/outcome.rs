//! What became of a push: recorded on its event row, counted in metrics, shown to operators.

/// The closed set of outcomes. The text form is what the events table and `/metrics` carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// A retry of a push already recorded: nothing changed.
    Duplicate,
    Credited,
    /// The invitee already has a credit in this campaign (the ledger's unique key decided).
    AlreadyCredited,
    ChannelFollow,
    UnknownScene,
    /// A follow through a binding code: completes the binding, credits no one.
    BindingFollow,
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
    /// The follower answered a subscription-notice prompt.
    Subscriptions,
    /// A push Fission keeps but does not act on.
    Recorded,
}

impl Outcome {
    /// Every outcome (a new one that is not listed here fails the round-trip test below).
    pub const ALL: [Outcome; 17] = ALL;

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Duplicate => "duplicate",
            Outcome::Credited => "credited",
            Outcome::AlreadyCredited => "already_credited",
            Outcome::ChannelFollow => "channel_follow",
            Outcome::UnknownScene => "unknown_scene",
            Outcome::BindingFollow => "binding_follow",
            Outcome::SelfInvite => "self_invite",
            Outcome::NotNew => "not_new",
            Outcome::NoCampaign => "no_campaign",
            Outcome::Followed => "followed",
            Outcome::Scan => "scan",
            Outcome::Unsubscribed => "unsubscribed",
            Outcome::Revoked => "revoked",
            Outcome::Poster => "poster",
            Outcome::Interaction => "interaction",
            Outcome::Subscriptions => "subscriptions",
            Outcome::Recorded => "recorded",
        }
    }
}

impl TryFrom<String> for Outcome {
    type Error = String;

    /// Reads an events row's outcome back (every outcome but `Duplicate` is stored).
    fn try_from(value: String) -> Result<Outcome, String> {
        ALL.into_iter()
            .find(|o| o.as_str() == value)
            .ok_or_else(|| format!("unknown event outcome {value:?}"))
    }
}

const ALL: [Outcome; 17] = [
    Outcome::Duplicate,
    Outcome::Credited,
    Outcome::AlreadyCredited,
    Outcome::ChannelFollow,
    Outcome::UnknownScene,
    Outcome::BindingFollow,
    Outcome::SelfInvite,
    Outcome::NotNew,
    Outcome::NoCampaign,
    Outcome::Followed,
    Outcome::Scan,
    Outcome::Unsubscribed,
    Outcome::Revoked,
    Outcome::Poster,
    Outcome::Interaction,
    Outcome::Subscriptions,
    Outcome::Recorded,
];

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A new outcome fails to compile here; listing it here is the reminder to add it to `ALL`
    /// (whose length the compiler checks too).
    #[test]
    fn all_has_every_outcome_once() {
        let position = |o: Outcome| match o {
            Outcome::Duplicate => 0,
            Outcome::Credited => 1,
            Outcome::AlreadyCredited => 2,
            Outcome::ChannelFollow => 3,
            Outcome::UnknownScene => 4,
            Outcome::SelfInvite => 5,
            Outcome::NotNew => 6,
            Outcome::NoCampaign => 7,
            Outcome::Followed => 8,
            Outcome::Scan => 9,
            Outcome::Unsubscribed => 10,
            Outcome::Revoked => 11,
            Outcome::Poster => 12,
            Outcome::Interaction => 13,
            Outcome::Subscriptions => 14,
            Outcome::Recorded => 15,
            Outcome::BindingFollow => 16,
        };
        let mut seen: Vec<usize> = ALL.into_iter().map(position).collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..ALL.len()).collect::<Vec<_>>());
    }

    #[test]
    fn every_outcome_reads_back_as_itself_and_serializes_as_stored() {
        for outcome in ALL {
            assert_eq!(Outcome::try_from(outcome.as_str().to_string()), Ok(outcome));
            assert_eq!(
                serde_json::to_value(outcome).unwrap(),
                serde_json::Value::String(outcome.as_str().into())
            );
        }
        assert!(Outcome::try_from("credit".to_string()).is_err());
    }
}
