//! The rules of referral: who gets credited, revoked and rewarded (`rules`, pure), and the
//! invite codes that make it possible. The push path (`crate::push`) applies these rules.

pub mod bindings;
pub mod campaigns;
pub mod channels;
pub mod codes;
pub mod import;
pub mod notices;
pub mod profile;
pub mod progress;
pub mod redemption;
pub mod review;
pub mod risk;
pub mod rules;
pub mod texts;
