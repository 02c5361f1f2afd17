//! Temporary placeholder until the simulator lands.
#[derive(Clone)]
pub struct Simulator;
pub struct SimConfig {
    pub appid: String,
    pub secret: String,
    pub token: String,
    pub encoding_aes_key: Option<String>,
    pub callback_url: Option<String>,
    pub public_base: String,
    pub permanent_quota: u32,
    pub account_name: String,
}
impl Simulator {
    pub fn new(_cfg: SimConfig) -> Self {
        Simulator
    }
    pub fn configure(&self, _cfg: &mut actix_web::web::ServiceConfig) {}
}
