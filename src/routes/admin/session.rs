//! What the dashboard keeps in the (encrypted cookie) session, and whether it still signs
//! someone in: the account must exist, the session must come from the account's current epoch
//! (logout and password changes bump it) and be younger than `MAX_AGE`.

use actix_session::{Session, SessionExt};
use actix_web::dev::ServiceRequest;
use chrono::Utc;

use crate::db;
use crate::db::admin::{AdminUser, Role};
use crate::error::AppError;
use crate::state::AppState;

const ADMIN_ID: &str = "admin_id";
const ADMIN_EPOCH: &str = "admin_epoch";
const LOGIN_AT: &str = "admin_login_at";
/// A sign-in lasts at most this long, however active the operator is.
const MAX_AGE_SECS: i64 = 12 * 3600;

/// The operator a request is signed in as (put in the request's extensions by the guard).
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub id: i64,
    pub username: String,
    pub role: Role,
}

fn session_error(e: impl std::fmt::Display) -> AppError {
    AppError::Internal(anyhow::anyhow!("session: {e}"))
}

pub async fn signed_in(
    state: &AppState,
    req: &ServiceRequest,
) -> Result<Option<SignedIn>, AppError> {
    let session = req.get_session();
    // A cookie that does not decode as ours is treated as no session at all.
    let id = session.get::<i64>(ADMIN_ID).ok().flatten();
    let epoch = session.get::<i64>(ADMIN_EPOCH).ok().flatten();
    let login_at = session.get::<i64>(LOGIN_AT).ok().flatten();
    let (Some(id), Some(epoch), Some(login_at)) = (id, epoch, login_at) else {
        return Ok(None);
    };
    if Utc::now().timestamp() - login_at > MAX_AGE_SECS {
        return Ok(None);
    }
    let user = db::admin::by_id(&state.pool, id).await?;
    Ok(user.filter(|u| u.session_epoch == epoch).map(|u| SignedIn {
        id: u.id,
        username: u.username,
        role: u.role,
    }))
}

/// Signs `user` in: a new session (new cookie, new CSRF token), so a session planted before the
/// login (session fixation) never becomes a signed-in one.
pub fn start(session: &Session, user: &AdminUser) -> Result<(), AppError> {
    session.clear();
    session.renew();
    session.insert(ADMIN_ID, user.id).map_err(session_error)?;
    session
        .insert(ADMIN_EPOCH, user.session_epoch)
        .map_err(session_error)?;
    session
        .insert(LOGIN_AT, Utc::now().timestamp())
        .map_err(session_error)?;
    super::csrf::rotate(session)?;
    Ok(())
}
