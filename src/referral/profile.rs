//! A follower's nickname and avatar, as they share them through WeChat sign-in
//! (`snsapi_userinfo`): shown on their poster and, masked, to others.

use crate::db;
use crate::domain::OpenId;
use crate::services::Services;

/// The longest nickname kept. WeChat's are far shorter; a longer one (from a misbehaving or
/// hostile upstream) is cut rather than stored and drawn on every poster.
pub const MAX_NICKNAME_CHARS: usize = 64;
/// Longer avatar URLs are not kept (WeChat's are about 150 characters).
const MAX_AVATAR_URL_BYTES: usize = 1024;

pub async fn share(
    services: &Services,
    openid: &OpenId,
    nickname: &str,
    avatar_url: Option<&str>,
) -> sqlx::Result<()> {
    let nickname: String = nickname.chars().take(MAX_NICKNAME_CHARS).collect();
    let avatar_url = avatar_url.filter(|u| u.len() <= MAX_AVATAR_URL_BYTES);
    db::users::set_profile(&services.pool, openid.as_str(), &nickname, avatar_url).await
}
