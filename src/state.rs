//! What every handler and worker shares: the services (pool, shared store, WeChat client,
//! storage, settings, metrics), plus the HTTP side's own parts — safe-mode crypto and the push
//! queue. Derefs to `Services`, so code below the routes takes only `&Services`.

use std::ops::Deref;

use crate::push::PushQueue;
use crate::services::Services;
use crate::wechat::crypto::MessageCrypto;

#[derive(Clone)]
pub struct AppState {
    pub services: Services,
    /// Safe-mode message crypto, when `WECHAT_ENCODING_AES_KEY` is set.
    pub crypto: Option<MessageCrypto>,
    /// Group commit of pushes (`push::batcher`).
    pub pushes: PushQueue,
}

impl Deref for AppState {
    type Target = Services;

    fn deref(&self) -> &Services {
        &self.services
    }
}
