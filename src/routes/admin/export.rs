//! CSV exports, streamed: rows go from the database cursor to the socket in small batches
//! through a bounded channel, so a million-row ledger never sits in memory. Both live under
//! `/admin/export/`, where the dashboard's guard admits a session or the bearer token.

use std::fmt::Write as _;

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::StreamExt;
use serde::Deserialize;
use sqlx::PgPool;
use tokio::sync::mpsc;

use crate::db;
use crate::db::dashboard::BoardLine;
use crate::db::referrals::LedgerRow;
use crate::error::AppError;
use crate::state::AppState;

const LEDGER_HEADER: &str =
    "invitee_openid,inviter_openid,campaign_id,scene,status,credited_at,revoked_at\n";
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
        let mut buf = String::from(header);
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
    campaign: Option<String>,
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
    let revoked = row.revoked_at.map(|t| t.to_rfc3339()).unwrap_or_default();
    // Writing to a String cannot fail.
    let _ = writeln!(
        buf,
        "{},{},{},{},{},{},{}",
        csv_field(&row.invitee_openid),
        csv_field(&row.inviter_openid),
        row.campaign_id,
        csv_field(&row.scene),
        status,
        row.credited_at.to_rfc3339(),
        revoked
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
        row.reached_at.to_rfc3339()
    );
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
