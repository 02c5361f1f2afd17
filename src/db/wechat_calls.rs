//! `wechat_api_calls`: WeChat API calls per hour, api and errcode, from every instance.

use chrono::{DateTime, Utc};
use sqlx::PgPool;

/// Adds a batch of call counts to the current hour, in one statement.
pub async fn add(
    pool: &PgPool,
    apis: &[String],
    errcodes: &[i64],
    calls: &[i64],
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO wechat_api_calls (hour, api, errcode, calls)
         SELECT date_trunc('hour', now()), a, e, c
         FROM unnest($1::text[], $2::bigint[], $3::bigint[]) AS t(a, e, c)
         ON CONFLICT (hour, api, errcode) DO UPDATE SET calls = wechat_api_calls.calls + EXCLUDED.calls",
    )
    .bind(apis)
    .bind(errcodes)
    .bind(calls)
    .execute(pool)
    .await
    .map(drop)
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CallCount {
    pub api: String,
    pub errcode: i64,
    pub calls: i64,
}

/// Calls since `since` (whole hours), by api and errcode, errors first.
pub async fn since(pool: &PgPool, since: DateTime<Utc>) -> sqlx::Result<Vec<CallCount>> {
    sqlx::query_as(
        "SELECT api, errcode, sum(calls)::bigint AS calls FROM wechat_api_calls
         WHERE hour >= date_trunc('hour', $1::timestamptz)
         GROUP BY api, errcode ORDER BY (errcode = 0), api, errcode",
    )
    .bind(since)
    .fetch_all(pool)
    .await
}
