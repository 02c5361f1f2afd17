//! A follower's nickname and avatar, as they share them through WeChat sign-in
//! (`snsapi_userinfo`): shown on their poster and, masked, to others.

use crate::db;
use crate::domain::OpenId;
use crate::services::Services;

pub async fn share(
    services: &Services,
    openid: &OpenId,
    nickname: &str,
    avatar_url: Option<&str>,
) -> sqlx::Result<()> {
    db::users::set_profile(&services.pool, openid.as_str(), nickname, avatar_url).await
}
