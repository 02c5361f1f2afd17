//! CSV exports, streamed: rows go from the database cursor to the socket in small batches
//! through a bounded channel, so a million-row ledger never sits in memory. Both live under
//! `/admin/export/`, where the dashboard's guard admits a session or the bearer token.
//!
//! For Excel, which is what growth teams open them with: a UTF-8 byte-order mark first (else
//! Excel reads 小明 as Latin-1), times in China time (RFC 3339 with `+08:00`), and the
//! contract's columns first, names after them. `workbook.rs` has the same reports as .xlsx.

use std::fmt::Write as _;

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::StreamExt;
use serde::Deserialize;
use sqlx::PgPool;
use tokio::sync::mpsc;

use chrono::{DateTime, Utc};

use crate::db;
use crate::db::dashboard::BoardLine;
use crate::db::referrals::LedgerRow;
use crate::domain::time::china;
use crate::error::AppError;
use crate::state::AppState;

const LEDGER_HEADER: &str =
    "invitee_openid,inviter_openid,campaign_id,scene,status,credited_at,revoked_at,\
     campaign_name,inviter_nickname,invitee_nickname\n";
const BOM: &str = "\u{feff}";
const BOARD_HEADER: &str = "rank,openid,nickname,invites,reached_at\n";
const FLUSH_AT: usize = 32 * 1024;

/// Streams `rows` as CSV: `header`, then one `line` per row.
fn csv_response<T, F>(
    pool: PgPool,
    filename: &'static str,
    header: &'static str,
    rows: F,
    line: fn(&mut String, &T),
) -> HttpResponse
where
    T: Send + 'static,
    F: for<'a> FnOnce(&'a PgPool) -> BoxStream<'a, sqlx::Result<T>> + Send + 'static,
{
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(8);
    tokio::spawn(async move {
        let mut rows = rows(&pool);
        let mut buf = format!("{BOM}{header}");
        while let Some(row) = rows.next().await {
            match row {
                Ok(row) => line(&mut buf, &row),
                Err(e) => {
                    tracing::error!(error = ?e, filename, "export failed mid-stream");
                    let _ = tx.send(Err(std::io::Error::other("export failed"))).await;
                    return;
                }
            }
            if buf.len() >= FLUSH_AT
                && tx
                    .send(Ok(Bytes::from(std::mem::take(&mut buf))))
                    .await
                    .is_err()
            {
                return; // the client went away
            }
        }
        let _ = tx.send(Ok(Bytes::from(buf))).await;
    });
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{filename}\""),
        ))
        .streaming(body)
}

pub async fn referrals_csv(state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    Ok(csv_response(
        state.pool.clone(),
        "referrals.csv",
        LEDGER_HEADER,
        |pool| db::referrals::ledger(pool),
        ledger_line,
    ))
}

#[derive(Deserialize)]
pub struct BoardQuery {
    pub(super) campaign: Option<String>,
}

/// The leaderboard of `?campaign=ID` (or `all`; default: the campaign running now).
pub async fn leaderboard_csv(
    state: web::Data<AppState>,
    q: web::Query<BoardQuery>,
) -> Result<HttpResponse, AppError> {
    let campaign = super::selected_campaign(&state, q.campaign.as_deref()).await?;
    Ok(csv_response(
        state.pool.clone(),
        "leaderboard.csv",
        BOARD_HEADER,
        move |pool| db::dashboard::board_stream(pool, campaign),
        board_line,
    ))
}

fn ledger_line(buf: &mut String, row: &LedgerRow) {
    let status = if row.revoked_at.is_some() {
        "revoked"
    } else {
        "credited"
    };
    let revoked = row.revoked_at.map(china_rfc3339).unwrap_or_default();
    // Writing to a String cannot fail.
    let _ = writeln!(
        buf,
        "{},{},{},{},{},{},{},{},{},{}",
        csv_field(&row.invitee_openid),
        csv_field(&row.inviter_openid),
        row.campaign_id,
        csv_field(&row.scene),
        status,
        china_rfc3339(row.credited_at),
        revoked,
        csv_field(&row.campaign_name),
        csv_field(row.inviter_nickname.as_deref().unwrap_or("")),
        csv_field(row.invitee_nickname.as_deref().unwrap_or("")),
    );
}

fn board_line(buf: &mut String, row: &BoardLine) {
    let _ = writeln!(
        buf,
        "{},{},{},{},{}",
        row.rank,
        csv_field(&row.openid),
        csv_field(row.nickname.as_deref().unwrap_or("")),
        row.invites,
        china_rfc3339(row.reached_at)
    );
}

/// A moment as RFC 3339 in China time, as the dashboard shows it.
fn china_rfc3339(t: DateTime<Utc>) -> String {
    t.with_timezone(&china()).to_rfc3339()
}

/// Quotes a field when it holds a separator (`,`, `;` or a tab), a quote or a line break (RFC
/// 4180), and defuses text a spreadsheet would run as a formula (a nickname starting with `=`,
/// `+`, `-`, `@`).
pub fn csv_field(value: &str) -> String {
    let value = if value.starts_with(['=', '+', '-', '@']) {
        format!("'{value}")
    } else {
        value.to_string()
    };
    // `;` too: Excel in many locales separates fields with it.
    if value.contains([',', ';', '\t', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value
    }
}

#[cfg(test)]
mod tests {
    use super::csv_field;

    #[test]
    fn fields_are_quoted_when_needed() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("a;b"), "\"a;b\"");
        assert_eq!(csv_field("a\tb"), "\"a\tb\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("=HYPERLINK(1)"), "'=HYPERLINK(1)");
    }
}
