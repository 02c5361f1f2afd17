//! Redemption codes for rewards handed over in person: the address a follower's code carries,
//! `FISSION_PUBLIC_URL/admin/redeem/<token>`, with a random token made the first time the
//! reward is shown (never the grant id, so codes cannot be guessed from one another).

use rand::RngCore;

use crate::db;
use crate::services::Services;

/// The address the redemption code of `grant` opens (the staff page).
pub async fn code_url(state: &Services, grant: i64) -> sqlx::Result<String> {
    let mut bytes = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut bytes);
    let token = db::redemptions::token_for(&state.pool, grant, &hex::encode(bytes)).await?;
    Ok(format!(
        "{}/admin/redeem/{token}",
        state.public_url.trim_end_matches('/')
    ))
}
