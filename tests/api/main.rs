//! Integration tests through the real HTTP surface: real PostgreSQL, real Redis, and a
//! stand-in WeChat server started by the tests.

mod callback;
mod codes;
mod crediting;
mod helpers;
mod outbox;
mod token;
