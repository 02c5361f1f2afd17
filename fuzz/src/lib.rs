//! The protocol modules the fuzz targets exercise, compiled from Fission's own sources. They
//! use nothing else of the crate, so the fuzzer builds them alone (with sanitizers) rather than
//! the whole service.

#[path = "../../src/wechat"]
pub mod wechat {
    pub mod callback_query;
    pub mod crypto;
    pub mod message;
}

pub mod checks;
