//! The rules of referral: who gets credited, revoked and rewarded, and the invite codes that
//! make it possible. Decisions are pure functions (`rules`); each push is applied in one
//! database transaction (`push`).

pub mod channels;
pub mod codes;
pub mod import;
pub mod progress;
pub mod push;
pub mod rules;
pub mod texts;
