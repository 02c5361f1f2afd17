//! The only place SQL lives. One file per table group; functions take a pool or a
//! transaction and return typed rows.

pub mod admin;
pub mod batch;
pub mod bindings;
pub mod campaign_edit;
pub mod campaigns;
pub mod charts;
pub mod codes;
pub mod dashboard;
pub mod delayed;
pub mod events;
pub mod leases;
pub mod media;
pub mod notices;
pub mod outbox;
pub mod posters;
pub mod redemptions;
pub mod referrals;
pub mod risk;
pub mod state;
pub mod users;
pub mod webhooks;
pub mod wechat_calls;

use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use secrecy::ExposeSecret;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgPool, Postgres};

pub type Tx<'a> = sqlx::Transaction<'a, Postgres>;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Whether a transaction failed only because a concurrent one won a race — PostgreSQL aborted
/// it as a deadlock or a serialization failure — so running it again may well succeed.
pub fn lost_a_race(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        matches!(
            cause.downcast_ref::<sqlx::Error>(),
            Some(sqlx::Error::Database(d)) if matches!(d.code().as_deref(), Some("40P01" | "40001"))
        )
    })
}

/// A pooled connection idle for longer than this is tested before it is used.
const IDLE_BEFORE_TEST: Duration = Duration::from_secs(1);

/// What a pool's connections are for: how PostgreSQL plans their statements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Planning {
    /// Every statement planned for its parameters and the tables as they are now. A prepared
    /// statement otherwise settles on a generic plan after five runs and keeps it until the
    /// table's statistics change: one made while `users` or `events` was small scans the whole
    /// table once it is not (every batch slower than the one before, until autovacuum happens
    /// to analyze it). For the pages, the API and the jobs: their statements vary, and run
    /// rarely enough that planning them costs little.
    Fresh,
    /// The push writers': each statement is planned once per connection, for no particular
    /// parameters, and that plan is kept — planning the batch's statements every time cost a
    /// lone push more than a millisecond, more than running them. A kept plan is only as good
    /// as the statistics it was made with; PostgreSQL makes a new one whenever a table it reads
    /// is analyzed, and `analyze_grown` sees to that while the tables are young and growing
    /// fast (autovacuum waits for 10 % more rows and may be busy elsewhere).
    Kept,
}

/// Connects to the configured database, creating it first if it does not exist.
pub async fn connect(
    database_url: &secrecy::SecretString,
    max_connections: u32,
    planning: Planning,
) -> anyhow::Result<PgPool> {
    let options = PgConnectOptions::from_str(database_url.expose_secret())
        .context("DATABASE_URL is not a valid PostgreSQL URL")?
        .log_statements(tracing::log::LevelFilter::Trace);
    let options = match planning {
        Planning::Fresh => options.options([("plan_cache_mode", "force_custom_plan")]),
        // No compiling of plans to machine code either: nothing here runs long enough to gain.
        Planning::Kept => {
            options.options([("plan_cache_mode", "force_generic_plan"), ("jit", "off")])
        }
    };
    create_if_missing(&options).await?;
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(30))
        // The pool tests every connection when it is given back (a round trip the caller does
        // not wait for); testing it again when it is taken, as by default, costs every batch
        // of pushes a round trip more. Only a connection idle for a while — time enough for
        // PostgreSQL to have gone away meanwhile — is tested before use.
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for > IDLE_BEFORE_TEST {
                    sqlx::Connection::ping(conn).await?;
                }
                Ok(true)
            })
        })
        .connect_with(options)
        .await
        .context("connecting to PostgreSQL")
}

/// Analyzes every table of Fission's that holds at least twice the rows it held when last
/// analyzed (and 1,000 or more): the planner's picture of a growing table is never more than
/// twice too small, whatever autovacuum does. Rows updated in place do not count: the small
/// tables every batch updates (code counters, leaderboard and risk rows) would otherwise be
/// analyzed every time, and each analyze makes every push writer plan its statements again.
/// Returns the tables analyzed.
pub async fn analyze_grown(pool: &PgPool) -> sqlx::Result<Vec<String>> {
    let grown: Vec<String> = sqlx::query_scalar(
        "SELECT s.relname::text FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid
         WHERE s.schemaname = current_schema()
           AND s.n_live_tup >= greatest(1000, 2 * c.reltuples)
           -- (Only its owner may analyze a table; autovacuum sees to the others.)
           AND pg_has_role(c.relowner, 'USAGE')
         ORDER BY s.relname",
    )
    .fetch_all(pool)
    .await?;
    for table in &grown {
        // A name from the catalog, quoted as PostgreSQL quotes identifiers.
        sqlx::raw_sql(&format!("ANALYZE \"{}\"", table.replace('"', "\"\"")))
            .execute(pool)
            .await?;
    }
    Ok(grown)
}

pub async fn migrate(pool: &PgPool) -> anyhow::Result<()> {
    MIGRATOR
        .run(pool)
        .await
        .context("running database migrations")
}

async fn create_if_missing(options: &PgConnectOptions) -> anyhow::Result<()> {
    let name = options.get_database().unwrap_or("postgres").to_string();
    let mut admin = sqlx::PgConnection::connect_with(&options.clone().database("postgres"))
        .await
        .context("connecting to PostgreSQL (database \"postgres\") to check the database exists")?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(&name)
            .fetch_one(&mut admin)
            .await?;
    if !exists {
        // Identifiers cannot be bound as parameters; quote it as PostgreSQL does.
        let statement = format!("CREATE DATABASE \"{}\"", name.replace('"', "\"\""));
        match sqlx::raw_sql(&statement).execute(&mut admin).await {
            Ok(_) => tracing::info!(database = %name, "created database"),
            // Another instance created it between our check and our CREATE.
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42P04") => {}
            Err(e) => return Err(e).context("creating the database"),
        }
    }
    admin.close().await.ok();
    Ok(())
}

/// True when the error is a unique violation of the named constraint.
pub fn is_unique_violation(e: &sqlx::Error, constraint: &str) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.code().as_deref() == Some("23505") && d.constraint() == Some(constraint))
}
