//! Operator accounts for the dashboard: argon2 password hashes, the built-in `admin` account
//! created on first start from `FISSION_ADMIN_PASSWORD`, and login throttling that holds across
//! instances (counters in the shared store).

use std::time::Duration;

use anyhow::Context;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::Argon2;
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::{Semaphore, SemaphorePermit};

use crate::db;
use crate::db::admin::AdminUser;
use crate::state::AppState;

pub const BUILTIN_ADMIN: &str = "admin";
/// Failed attempts allowed per client address and per account within `FAILURE_WINDOW`.
pub const MAX_FAILURES: i64 = 5;
pub const FAILURE_WINDOW: Duration = Duration::from_secs(15 * 60);

/// A verified operator name: 1–64 letters, digits, `_`, `-`, `.` or `@`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    pub fn parse(raw: &str) -> Option<Username> {
        let name = raw.trim();
        let ok = (1..=64).contains(&name.chars().count())
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '@'));
        ok.then(|| Username(name.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Hashes on a blocking thread: argon2 is deliberately slow and would stall the event loop.
pub async fn hash_password(password: SecretString) -> anyhow::Result<String> {
    tokio::task::spawn_blocking(move || {
        Argon2::default()
            .hash_password(password.expose_secret().as_bytes())
            .map(|h| h.to_string())
            .map_err(|e| anyhow::anyhow!("hashing the password: {e}"))
    })
    .await
    .context("the hashing task failed")?
}

/// Verifies on a blocking thread, holding `permit` until the check is done (even when the
/// request that asked has gone away).
async fn verify(
    password: SecretString,
    hash: String,
    permit: SemaphorePermit<'static>,
) -> anyhow::Result<bool> {
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        let parsed =
            PasswordHash::new(&hash).map_err(|e| anyhow::anyhow!("stored hash unreadable: {e}"))?;
        Ok(Argon2::default()
            .verify_password(password.expose_secret().as_bytes(), &parsed)
            .is_ok())
    })
    .await
    .context("the verifying task failed")?
}

/// Stores the built-in `admin` account the first time the service starts with
/// `FISSION_ADMIN_PASSWORD`; later starts leave it alone (use `fission admin add-user` to change it).
pub async fn ensure_builtin_admin(state: &AppState) -> anyhow::Result<()> {
    let Some(password) = state.settings.admin_password.clone() else {
        return Ok(());
    };
    if db::admin::by_username(&state.pool, BUILTIN_ADMIN)
        .await?
        .is_some()
    {
        return Ok(());
    }
    let hash = hash_password(password).await?;
    if db::admin::create_if_missing(&state.pool, BUILTIN_ADMIN, &hash).await? {
        tracing::info!("stored the dashboard's admin account from FISSION_ADMIN_PASSWORD");
    }
    Ok(())
}

/// Creates an operator account, or sets a new password (and role, if given) for an existing one
/// (which ends its sessions). The `fission admin add-user` command.
pub async fn add_user(
    pool: &sqlx::PgPool,
    username: &str,
    password: SecretString,
    role: Option<db::admin::Role>,
) -> anyhow::Result<()> {
    let name = Username::parse(username)
        .context("a username is 1 to 64 letters, digits or the characters _ - . @ (no spaces)")?;
    if password.expose_secret().chars().count() < 8 {
        anyhow::bail!("the password must be at least 8 characters");
    }
    let hash = hash_password(password).await?;
    db::admin::upsert(pool, name.as_str(), &hash, role).await?;
    Ok(())
}

#[derive(Debug)]
pub enum LoginOutcome {
    Ok(AdminUser),
    WrongPassword,
    /// Too many failures from this address or for this account; nothing was checked.
    Throttled,
    /// Too many passwords being checked at once; nothing was checked and nothing counted.
    Busy,
}

/// Password checks running at once in this process, whoever asks: each holds argon2's ~19 MiB
/// for its run, so a flood of attempts from many addresses costs a bounded amount of memory.
static PASSWORD_CHECKS: Semaphore = Semaphore::const_new(2);
/// How long an attempt waits for a turn before it is told to try again later.
const CHECK_WAIT: Duration = Duration::from_secs(3);

/// Checks a login attempt. The attempt is counted as a failure first, atomically, and refused
/// when that passes the limit, before any password is looked at; a right password gives the
/// count back. So however many attempts arrive at once, and however many instances they are
/// spread over, at most `MAX_FAILURES` per window are ever checked.
pub async fn login(
    state: &AppState,
    client: &str,
    username: &str,
    password: SecretString,
) -> anyhow::Result<LoginOutcome> {
    let account = Username::parse(username);
    let account_key = format!(
        "admin-login:user:{}",
        account.as_ref().map_or("-", |u| u.as_str())
    );
    let client_key = format!("admin-login:ip:{client}");
    let keys = [account_key.as_str(), client_key.as_str()];
    let mut over_limit = false;
    for key in keys {
        over_limit |= state.store.incr(key, FAILURE_WINDOW).await? > MAX_FAILURES;
    }
    if over_limit {
        return Ok(LoginOutcome::Throttled);
    }
    let user = match &account {
        Some(name) => db::admin::by_username(&state.pool, name.as_str()).await?,
        None => None,
    };
    // An unknown account costs as much as a wrong password, so timing does not tell them apart.
    let hash = user
        .as_ref()
        .map(|u| u.password_hash.clone())
        .unwrap_or_else(|| UNKNOWN_ACCOUNT_HASH.to_string());
    let Ok(Ok(permit)) = tokio::time::timeout(CHECK_WAIT, PASSWORD_CHECKS.acquire()).await else {
        forgive(state, &keys).await?;
        return Ok(LoginOutcome::Busy);
    };
    state.metrics.password_checks.inc();
    match (verify(password, hash, permit).await?, user) {
        (true, Some(user)) => {
            forgive(state, &keys).await?;
            Ok(LoginOutcome::Ok(user))
        }
        _ => Ok(LoginOutcome::WrongPassword),
    }
}

/// Takes back the failure an attempt was counted as.
async fn forgive(state: &AppState, keys: &[&str]) -> anyhow::Result<()> {
    for key in keys {
        state.store.decr(key).await?;
    }
    Ok(())
}

/// The argon2id hash (default parameters) of a random string nobody knows.
const UNKNOWN_ACCOUNT_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$T6IqZQmFZ5TQ0M2Q3jVh1lL3tCzZLbAd1Pq0bq0Yz6k";

/// Ends every session of an operator account (cookie sessions carry the account's epoch).
pub async fn sign_out_everywhere(pool: &sqlx::PgPool, user_id: i64) -> sqlx::Result<()> {
    db::admin::end_sessions(pool, user_id).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_checked() {
        assert!(Username::parse("admin").is_some());
        assert_eq!(Username::parse(" ops.lead ").unwrap().as_str(), "ops.lead");
        for bad in ["", "has space", "名字", &"x".repeat(65), "a;b"] {
            assert!(Username::parse(bad).is_none(), "{bad}");
        }
    }

    #[tokio::test]
    async fn hashes_verify_only_their_password() {
        let hash = hash_password(SecretString::from("correct horse"))
            .await
            .unwrap();
        assert!(hash.starts_with("$argon2id$"));
        let check = |password: &str, hash: String| {
            let password = SecretString::from(password.to_string());
            async move {
                let permit = PASSWORD_CHECKS.acquire().await.unwrap();
                verify(password, hash, permit).await.unwrap()
            }
        };
        assert!(check("correct horse", hash.clone()).await);
        assert!(!check("wrong", hash).await);
        // The stand-in hash parses, so unknown accounts take the same path.
        assert!(!check("x", UNKNOWN_ACCOUNT_HASH.into()).await);
    }
}
