//! Integration tests through the real HTTP surface: real PostgreSQL, real Redis, and a
//! stand-in WeChat server started by the tests.

mod admin_access;
mod admin_browser;
mod admin_client;
mod admin_export;
mod admin_login;
mod admin_pages;
mod attack_avatars;
mod attack_bodies;
mod attack_headers;
mod attack_login;
mod attack_logs;
mod attack_misc;
mod attack_posters;
mod browser;
mod callback;
mod codes;
mod crediting;
mod group_commit;
mod helpers;
mod invite;
mod invite_page;
mod leaderboard;
mod notices;
mod outbox;
mod poster;
mod sandbox;
mod sandbox_story;
mod token;
mod ux_campaigns;
mod ux_codes;
mod ux_exports;
mod ux_invite_rank;
mod ux_safe_texts;
mod ux_sessions;
mod ux_welcome;
