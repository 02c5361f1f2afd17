//! `leases`: who is doing a piece of WeChat work right now, across every instance. Taking or
//! ending one is a single statement, so no connection is held while the work is done.

use std::time::Duration;

use sqlx::PgExecutor;
use uuid::Uuid;

/// A lease this process holds on the work called `name`.
#[derive(Debug)]
pub struct Lease {
    name: String,
    holder: Uuid,
}

impl Lease {
    /// Takes the lease `name` for `ttl`, unless another holder has a live one. An expired lease
    /// (its holder died or stalled) is taken over.
    pub async fn take(
        db: impl PgExecutor<'_>,
        name: &str,
        ttl: Duration,
    ) -> sqlx::Result<Option<Lease>> {
        let holder = Uuid::new_v4();
        let taken: Option<Uuid> = sqlx::query_scalar(
            "INSERT INTO leases (name, holder, expires_at)
             VALUES ($1, $2, now() + make_interval(secs => $3))
             ON CONFLICT (name) DO UPDATE
                SET holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at
                WHERE leases.expires_at <= now()
             RETURNING holder",
        )
        .bind(name)
        .bind(holder)
        .bind(ttl.as_secs_f64())
        .fetch_optional(db)
        .await?;
        Ok((taken == Some(holder)).then(|| Lease {
            name: name.to_string(),
            holder,
        }))
    }

    /// Ends the lease if it is still ours; returns whether it was. Run it in the transaction
    /// that stores the work's result, so the result and the end of the lease commit together.
    pub async fn end(&self, db: impl PgExecutor<'_>) -> sqlx::Result<bool> {
        let ended = sqlx::query("DELETE FROM leases WHERE name = $1 AND holder = $2")
            .bind(&self.name)
            .bind(self.holder)
            .execute(db)
            .await?;
        Ok(ended.rows_affected() == 1)
    }
}
