//! The WeChat Official Account protocol: signatures and message crypto, push parsing and
//! replies, the shared access_token, and the API calls Fission makes. No database, no routes.

pub mod allowance;
pub mod callback_query;
pub mod client;
pub mod crypto;
pub mod error;
pub mod jsapi;
pub mod message;
pub mod outgoing;
pub mod qrcode;
pub mod token;

pub use client::WechatClient;
pub use error::WechatError;
