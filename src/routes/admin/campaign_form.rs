//! The campaign form: what was typed (kept as text so a failed submit shows it all again) and
//! its validation into a `CampaignInput`, with an error per field. No I/O here.

use std::collections::BTreeMap;

use chrono::Utc;
use serde_json::{json, Value};

use super::frame::{input_time, parse_input_time};
use crate::db::campaign_edit::{CampaignInput, TierInput};
use crate::db::campaigns::CampaignTerms;
use crate::db::campaigns::{Campaign, Tier};
use crate::referral::notices::{self, MappingError};
use crate::referral::texts;

/// Blank tier rows offered for new tiers: at least this many…
const BLANK_TIERS: usize = 2;
/// …and rows enough that a campaign's usual tiers fit in one go.
const MIN_TIER_ROWS: usize = 5;

/// The placeholders each message text may use (filled in by `push::apply`).
pub const WELCOME_KEYS: &[&str] = &["inviter"];
pub const CREDIT_KEYS: &[&str] = &["invitee", "friends", "count", "next"];
pub const REWARD_KEYS: &[&str] = &["count", "reward", "code"];

#[derive(Debug, Clone, Default)]
pub struct TierRow {
    pub id: String,
    pub threshold: String,
    pub name: String,
    pub uses_codes: bool,
    pub claim_instructions: String,
    pub redeem_in_store: bool,
}

/// Longest claim instructions a tier may have (they show on a phone).
const MAX_CLAIM_CHARS: usize = 500;

/// Poster element positions, in background pixels.
#[derive(Debug, Clone, Default)]
pub struct LayoutFields {
    pub qr_x: String,
    pub qr_y: String,
    pub qr_size: String,
    pub avatar_x: String,
    pub avatar_y: String,
    pub avatar_size: String,
    pub nick_x: String,
    pub nick_y: String,
    pub nick_size: String,
    pub nick_color: String,
}

#[derive(Debug, Clone, Default)]
pub struct CampaignForm {
    pub name: String,
    pub starts_at: String,
    pub ends_at: String,
    pub revoke_window_days: String,
    pub revoke_rewards: bool,
    pub welcome_text: String,
    pub credit_text: String,
    pub reward_text: String,
    pub rules: String,
    pub template_id: String,
    pub template_fields: String,
    pub subscribe_template_id: String,
    pub subscribe_fields: String,
    pub layout: LayoutFields,
    pub tiers: Vec<TierRow>,
}

impl CampaignForm {
    /// The fields whose text asks for Moments or group shares (the form warns about them: with
    /// rewards attached, WeChat counts that as induced sharing).
    pub fn induced_sharing(&self) -> Vec<&'static str> {
        let texts = [
            ("campaign.name", self.name.as_str()),
            ("campaign.welcome_text", self.welcome_text.as_str()),
            ("campaign.credit_text", self.credit_text.as_str()),
            ("campaign.reward_text", self.reward_text.as_str()),
            ("campaign.rules", self.rules.as_str()),
            ("campaign.fields", self.template_fields.as_str()),
        ];
        let mut fields: Vec<&'static str> = texts
            .into_iter()
            .filter(|(_, text)| texts::asks_for_moments_shares(text))
            .map(|(field, _)| field)
            .collect();
        if self.tiers.iter().any(|t| {
            texts::asks_for_moments_shares(&t.name)
                || texts::asks_for_moments_shares(&t.claim_instructions)
        }) {
            fields.push("campaign.tiers");
        }
        fields
    }
}

/// Field name → message key of what is wrong with it (`tier_N` for tier row N).
pub type Errors = BTreeMap<String, &'static str>;

fn layout_number(layout: &Value, element: &str, field: &str) -> String {
    layout[element][field]
        .as_i64()
        .map(|n| n.to_string())
        .unwrap_or_default()
}

impl CampaignForm {
    /// A new campaign's form: starts now, the default texts and poster layout.
    pub fn blank(defaults: &Campaign, layout: &Value) -> CampaignForm {
        let mut form = CampaignForm::from_campaign(defaults, &[], layout);
        form.name = String::new();
        form.starts_at = input_time(&Utc::now());
        form.ends_at = String::new();
        form.rules = String::new();
        form.template_id = String::new();
        form.template_fields = String::new();
        form.subscribe_template_id = String::new();
        form.subscribe_fields = String::new();
        form
    }

    pub fn from_campaign(c: &Campaign, tiers: &[Tier], layout: &Value) -> CampaignForm {
        let mut rows: Vec<TierRow> = tiers
            .iter()
            .map(|t| TierRow {
                id: t.id.to_string(),
                threshold: t.threshold.to_string(),
                name: t.name.clone(),
                uses_codes: t.uses_codes,
                claim_instructions: t.claim_instructions.clone(),
                redeem_in_store: t.redeem_in_store,
            })
            .collect();
        let blank = BLANK_TIERS.max(MIN_TIER_ROWS.saturating_sub(rows.len()));
        rows.extend((0..blank).map(|_| TierRow::default()));
        CampaignForm {
            name: c.name.clone(),
            starts_at: input_time(&c.starts_at),
            ends_at: c.ends_at.as_ref().map(input_time).unwrap_or_default(),
            revoke_window_days: c.revoke_window_days.to_string(),
            revoke_rewards: c.revoke_rewards,
            welcome_text: c.welcome_text.clone(),
            credit_text: c.credit_text.clone(),
            reward_text: c.reward_text.clone(),
            rules: c.rules.clone(),
            template_id: c.template_id.clone().unwrap_or_default(),
            template_fields: c.template_fields.clone(),
            subscribe_template_id: c.subscribe_template_id.clone().unwrap_or_default(),
            subscribe_fields: c.subscribe_fields.clone(),
            layout: LayoutFields {
                qr_x: layout_number(layout, "qr", "x"),
                qr_y: layout_number(layout, "qr", "y"),
                qr_size: layout_number(layout, "qr", "size"),
                avatar_x: layout_number(layout, "avatar", "x"),
                avatar_y: layout_number(layout, "avatar", "y"),
                avatar_size: layout_number(layout, "avatar", "size"),
                nick_x: layout_number(layout, "nickname", "x"),
                nick_y: layout_number(layout, "nickname", "y"),
                nick_size: layout_number(layout, "nickname", "size"),
                nick_color: layout["nickname"]["color"]
                    .as_str()
                    .unwrap_or("#ffffff")
                    .to_string(),
            },
            tiers: rows,
        }
    }

    /// Reads the submitted pairs; tier rows come as `tier_threshold_N` etc.
    pub fn from_pairs(pairs: &[(String, String)]) -> CampaignForm {
        let get = |key: &str| {
            pairs
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        let mut tiers: BTreeMap<usize, TierRow> = BTreeMap::new();
        for (key, value) in pairs {
            let Some((field, index)) = key
                .strip_prefix("tier_")
                .and_then(|rest| rest.rsplit_once('_'))
            else {
                continue;
            };
            let Ok(index) = index.parse::<usize>() else {
                continue;
            };
            if index >= 100 {
                continue;
            }
            let row = tiers.entry(index).or_default();
            match field {
                "id" => row.id = value.clone(),
                "threshold" => row.threshold = value.clone(),
                "name" => row.name = value.clone(),
                "codes" => row.uses_codes = true,
                "claim" => row.claim_instructions = value.clone(),
                "store" => row.redeem_in_store = true,
                _ => {}
            }
        }
        CampaignForm {
            name: get("name"),
            starts_at: get("starts_at"),
            ends_at: get("ends_at"),
            revoke_window_days: get("revoke_window_days"),
            revoke_rewards: pairs.iter().any(|(k, _)| k == "revoke_rewards"),
            welcome_text: get("welcome_text"),
            credit_text: get("credit_text"),
            reward_text: get("reward_text"),
            rules: get("rules"),
            template_id: get("template_id"),
            template_fields: get("template_fields"),
            subscribe_template_id: get("subscribe_template_id"),
            subscribe_fields: get("subscribe_fields"),
            layout: LayoutFields {
                qr_x: get("qr_x"),
                qr_y: get("qr_y"),
                qr_size: get("qr_size"),
                avatar_x: get("avatar_x"),
                avatar_y: get("avatar_y"),
                avatar_size: get("avatar_size"),
                nick_x: get("nick_x"),
                nick_y: get("nick_y"),
                nick_size: get("nick_size"),
                nick_color: get("nick_color"),
            },
            tiers: tiers.into_values().collect(),
        }
    }

    /// The validated campaign, and the existing tiers whose rows were emptied (to remove);
    /// or every problem found.
    pub fn validate(&self) -> Result<(CampaignInput, Vec<i64>), Errors> {
        let mut errors = Errors::new();
        let name = self.name.trim().to_string();
        if name.is_empty() || name.chars().count() > 64 {
            errors.insert("name".into(), "form.name_invalid");
        }
        let starts_at = parse_input_time(&self.starts_at);
        if starts_at.is_none() {
            errors.insert("starts_at".into(), "form.time_invalid");
        }
        let ends_at = match self.ends_at.trim() {
            "" => None,
            value => {
                let end = parse_input_time(value);
                match (end, starts_at) {
                    (None, _) => {
                        errors.insert("ends_at".into(), "form.time_invalid");
                    }
                    (Some(e), Some(s)) if e <= s => {
                        errors.insert("ends_at".into(), "form.end_before_start");
                    }
                    _ => {}
                }
                end
            }
        };
        let revoke_window_days = number(&self.revoke_window_days, 0, 365);
        if revoke_window_days.is_none() {
            errors.insert("revoke_window_days".into(), "form.window_invalid");
        }
        for (field, text, keys) in [
            ("welcome_text", &self.welcome_text, WELCOME_KEYS),
            ("credit_text", &self.credit_text, CREDIT_KEYS),
            ("reward_text", &self.reward_text, REWARD_KEYS),
        ] {
            if let Some(problem) = text_problem(text, keys) {
                errors.insert(field.into(), problem);
            }
        }
        if self.rules.chars().count() > 5000 {
            errors.insert("rules".into(), "form.rules_too_long");
        }
        let template_id = self.template_id.trim();
        let subscribe_template_id = self.subscribe_template_id.trim();
        for (id_field, id, fields_field, fields) in [
            (
                "template_id",
                template_id,
                "template_fields",
                &self.template_fields,
            ),
            (
                "subscribe_template_id",
                subscribe_template_id,
                "subscribe_fields",
                &self.subscribe_fields,
            ),
        ] {
            if id.len() > 64
                || !id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            {
                errors.insert(id_field.into(), "form.template_invalid");
            }
            // A template is only usable with its keywords mapped; a mapping is checked even
            // without a template so that nothing typed is silently kept broken.
            if !id.is_empty() || !fields.trim().is_empty() {
                if let Err(e) = notices::parse_mapping(fields) {
                    errors.insert(fields_field.into(), mapping_problem(&e));
                }
            }
        }
        let poster_layout = self.layout.validate(&mut errors);
        let (tiers, removed) = self.validate_tiers(&mut errors);
        if !errors.is_empty() {
            return Err(errors);
        }
        let (Some(starts_at), Some(revoke_window_days), Some(poster_layout)) =
            (starts_at, revoke_window_days, poster_layout)
        else {
            return Err(errors);
        };
        Ok((
            CampaignInput {
                terms: CampaignTerms {
                    name,
                    starts_at,
                    ends_at,
                    revoke_window_days: revoke_window_days as i32,
                    revoke_rewards: self.revoke_rewards,
                    welcome_text: self.welcome_text.trim().to_string(),
                    credit_text: self.credit_text.trim().to_string(),
                    reward_text: self.reward_text.trim().to_string(),
                    rules: self.rules.trim().to_string(),
                    template_id: (!template_id.is_empty()).then(|| template_id.to_string()),
                    template_fields: self.template_fields.trim().to_string(),
                    subscribe_template_id: (!subscribe_template_id.is_empty())
                        .then(|| subscribe_template_id.to_string()),
                    subscribe_fields: self.subscribe_fields.trim().to_string(),
                },
                poster_layout,
                tiers,
            },
            removed,
        ))
    }

    fn validate_tiers(&self, errors: &mut Errors) -> (Vec<TierInput>, Vec<i64>) {
        let mut tiers = Vec::new();
        let mut removed = Vec::new();
        for (i, row) in self.tiers.iter().enumerate() {
            let id = row.id.trim().parse::<i64>().ok();
            let (threshold, name) = (row.threshold.trim(), row.name.trim());
            if threshold.is_empty() && name.is_empty() {
                removed.extend(id);
                continue;
            }
            let Some(threshold) = number(threshold, 1, 1_000_000) else {
                errors.insert(format!("tier_{i}"), "form.tier_threshold");
                continue;
            };
            if name.is_empty() || name.chars().count() > 64 {
                errors.insert(format!("tier_{i}"), "form.tier_name");
                continue;
            }
            let claim = row.claim_instructions.trim();
            if claim.chars().count() > MAX_CLAIM_CHARS {
                errors.insert(format!("tier_{i}"), "form.tier_claim_too_long");
                continue;
            }
            if tiers
                .iter()
                .any(|t: &TierInput| i64::from(t.threshold) == threshold)
            {
                errors.insert(format!("tier_{i}"), "form.tier_duplicate");
                continue;
            }
            tiers.push(TierInput {
                id,
                threshold: threshold as i32,
                name: name.to_string(),
                uses_codes: row.uses_codes,
                claim_instructions: claim.to_string(),
                redeem_in_store: row.redeem_in_store,
            });
        }
        (tiers, removed)
    }
}

impl LayoutFields {
    fn validate(&self, errors: &mut Errors) -> Option<Value> {
        let mut bad = false;
        let mut n = |value: &str, min: i64, max: i64| {
            let parsed = number(value, min, max);
            bad |= parsed.is_none();
            parsed.unwrap_or(0)
        };
        let layout = json!({
            "qr": { "x": n(&self.qr_x, 0, 5000), "y": n(&self.qr_y, 0, 5000), "size": n(&self.qr_size, 80, 3000) },
            "avatar": { "x": n(&self.avatar_x, 0, 5000), "y": n(&self.avatar_y, 0, 5000), "size": n(&self.avatar_size, 16, 2000) },
            "nickname": { "x": n(&self.nick_x, 0, 5000), "y": n(&self.nick_y, 0, 5000), "size": n(&self.nick_size, 8, 300),
                          "color": self.nick_color.trim().to_ascii_lowercase() },
        });
        if bad {
            errors.insert("layout".into(), "form.layout_invalid");
        }
        let color = self.nick_color.trim();
        if !(color.len() == 7
            && color.starts_with('#')
            && color[1..].chars().all(|c| c.is_ascii_hexdigit()))
        {
            errors.insert("nick_color".into(), "form.color_invalid");
            return None;
        }
        (!bad).then_some(layout)
    }
}

fn number(value: &str, min: i64, max: i64) -> Option<i64> {
    value
        .trim()
        .parse::<i64>()
        .ok()
        .filter(|n| (min..=max).contains(n))
}

/// What is wrong with a message text: empty, too long for a WeChat message, or naming a
/// placeholder the message does not have.
fn text_problem(text: &str, keys: &[&str]) -> Option<&'static str> {
    let text = text.trim();
    if text.is_empty() {
        return Some("form.text_empty");
    }
    if text.chars().count() > 600 {
        return Some("form.text_too_long");
    }
    let mut rest = text;
    while let Some(start) = rest.find('{') {
        let after = &rest[start + 1..];
        if let Some(end) = after.find('}') {
            let key = &after[..end];
            let looks_like_placeholder = !key.is_empty()
                && key.len() <= 20
                && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if looks_like_placeholder && !keys.contains(&key) {
                return Some("form.text_unknown_placeholder");
            }
        }
        rest = after;
    }
    None
}

/// The message key for what is wrong with a template's keyword mapping.
fn mapping_problem(e: &MappingError) -> &'static str {
    match e {
        MappingError::Empty => "form.fields_missing",
        MappingError::Shape(_) | MappingError::Twice(_) => "form.fields_shape",
        MappingError::Keyword(..) => "form.fields_keyword",
        MappingError::Placeholder(..) => "form.fields_placeholder",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn valid() -> Vec<(String, String)> {
        pairs(&[
            ("name", "双十一拉新"),
            ("starts_at", "2026-11-01T00:00"),
            ("ends_at", "2026-11-30T23:59"),
            ("revoke_window_days", "7"),
            ("welcome_text", "欢迎！来自 {inviter}"),
            ("credit_text", "{invitee} 来了，共 {count} 位。{next}"),
            ("reward_text", "获得 {reward} {code}"),
            ("rules", ""),
            ("template_id", ""),
            ("qr_x", "465"),
            ("qr_y", "1000"),
            ("qr_size", "280"),
            ("avatar_x", "60"),
            ("avatar_y", "1040"),
            ("avatar_size", "120"),
            ("nick_x", "200"),
            ("nick_y", "1075"),
            ("nick_size", "40"),
            ("nick_color", "#FFFFFF"),
            ("tier_threshold_0", "3"),
            ("tier_name_0", "优惠券"),
            ("tier_threshold_1", "10"),
            ("tier_name_1", "礼盒"),
            ("tier_codes_1", "on"),
            ("tier_claim_1", " 到店出示核销码领取 "),
            ("tier_store_1", "on"),
            ("tier_threshold_2", ""),
            ("tier_name_2", ""),
        ])
    }

    #[test]
    fn a_valid_form_becomes_a_campaign() {
        let (c, removed) = CampaignForm::from_pairs(&valid()).validate().unwrap();
        assert_eq!(c.terms.name, "双十一拉新");
        assert_eq!(c.tiers.len(), 2);
        assert!(c.tiers[1].uses_codes && !c.tiers[0].uses_codes);
        assert_eq!(c.tiers[1].claim_instructions, "到店出示核销码领取");
        assert!(c.tiers[1].redeem_in_store && !c.tiers[0].redeem_in_store);
        assert_eq!(c.poster_layout["nickname"]["color"], "#ffffff");
        assert_eq!(c.poster_layout["qr"]["size"], 280);
        assert!(removed.is_empty());
    }

    #[test]
    fn every_problem_is_reported_next_to_its_field() {
        let mut p = valid();
        for (k, v) in p.iter_mut() {
            match k.as_str() {
                "name" => *v = " ".into(),
                "ends_at" => *v = "2026-10-01T00:00".into(),
                "credit_text" => *v = "{invitee} {typo}".into(),
                "tier_threshold_1" => *v = "3".into(),
                "nick_color" => *v = "white".into(),
                "qr_size" => *v = "big".into(),
                _ => {}
            }
        }
        let errors = CampaignForm::from_pairs(&p).validate().unwrap_err();
        assert_eq!(errors["name"], "form.name_invalid");
        assert_eq!(errors["ends_at"], "form.end_before_start");
        assert_eq!(errors["credit_text"], "form.text_unknown_placeholder");
        assert_eq!(errors["tier_1"], "form.tier_duplicate");
        assert_eq!(errors["nick_color"], "form.color_invalid");
        assert_eq!(errors["layout"], "form.layout_invalid");
    }

    #[test]
    fn an_emptied_existing_tier_is_removed() {
        let mut p = valid();
        p.push(("tier_id_2".into(), "42".into()));
        let (_, removed) = CampaignForm::from_pairs(&p).validate().unwrap();
        assert_eq!(removed, vec![42]);
    }
}
