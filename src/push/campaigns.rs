//! The campaigns and their tiers, kept in memory for the push path. Every batch reads the
//! campaigns' version (a row that any change to campaigns or tiers bumps in its own
//! transaction) and reloads when it moved, so an operator's save counts from the next push on.

use std::sync::{Arc, Mutex};

use crate::db::{self, Tx};
use crate::domain::CampaignId;
use crate::referral::rules::{CampaignRules, TierRule};

#[derive(Default)]
pub struct CampaignCache {
    current: Mutex<Option<(i64, Arc<Vec<CampaignRules>>)>>,
}

impl CampaignCache {
    /// The campaigns as of `version`, loaded through `tx` if this copy is older.
    pub async fn at_version(
        &self,
        tx: &mut Tx<'_>,
        version: i64,
    ) -> sqlx::Result<Arc<Vec<CampaignRules>>> {
        if let Some((v, campaigns)) = &*self.lock() {
            if *v == version {
                return Ok(campaigns.clone());
            }
        }
        let delays: std::collections::HashMap<i64, i32> =
            db::delayed::delays(tx).await?.into_iter().collect();
        let loaded: Arc<Vec<CampaignRules>> = Arc::new(
            db::campaigns::all_with_tiers(tx)
                .await?
                .into_iter()
                .map(|(c, tiers)| CampaignRules {
                    id: CampaignId(c.id),
                    is_default: c.is_default,
                    starts_at: c.terms.starts_at,
                    ends_at: c.terms.ends_at,
                    revoke_window_days: c.terms.revoke_window_days,
                    revoke_rewards: c.terms.revoke_rewards,
                    welcome_text: c.terms.welcome_text,
                    credit_text: c.terms.credit_text,
                    reward_text: c.terms.reward_text,
                    template_id: c.terms.template_id,
                    reward_delay_days: delays.get(&c.id).copied().unwrap_or(0),
                    tiers: tiers
                        .into_iter()
                        .map(|t| TierRule {
                            id: t.id,
                            threshold: t.threshold,
                            name: t.name,
                            uses_codes: t.uses_codes,
                        })
                        .collect(),
                })
                .collect(),
        );
        let mut current = self.lock();
        // A batch that read a newer version meanwhile keeps its copy.
        if current.as_ref().is_none_or(|(v, _)| *v <= version) {
            *current = Some((version, loaded.clone()));
        }
        Ok(loaded)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<(i64, Arc<Vec<CampaignRules>>)>> {
        // A panic elsewhere cannot leave this half-written: it holds a complete value or none.
        self.current
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
