//! What an operator sets for how a campaign tells inviters.

/// The notice texts and channels of a campaign.
#[derive(Debug, Clone, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct NoticeTexts {
    /// "{invitee} 通过你的邀请关注了公众号…": `{invitee}`, `{friends}`, `{count}`, `{next}`.
    pub credit_text: String,
    /// "恭喜！…获得奖励：{reward}。{code}": `{count}`, `{reward}`, `{code}`.
    pub reward_text: String,
    /// Category template (template/send) and its keyword mapping.
    pub template_id: Option<String>,
    pub template_fields: String,
    /// Subscription notice template (subscribe/bizsend) and its keyword mapping.
    pub subscribe_template_id: Option<String>,
    pub subscribe_fields: String,
}
