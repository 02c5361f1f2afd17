//! CSV exports, streamed: rows go from the database cursor to the socket in small batches
//! through a bounded channel, so a million-row ledger never sits in memory.

use std::fmt::Write as _;

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use bytes::Bytes;
use futures_util::StreamExt;
use tokio::sync::mpsc;

use crate::db;
use crate::db::referrals::LedgerRow;
use crate::error::AppError;
use crate::state::AppState;

const LEDGER_HEADER: &str =
    "invitee_openid,inviter_openid,campaign_id,scene,status,credited_at,revoked_at\n";
const FLUSH_AT: usize = 32 * 1024;

pub async fn referrals_csv(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, AppError> {
    if !super::api::has_admin_token(&state, req.headers()).unwrap_or(false) {
        return Err(AppError::Unauthorized);
    }
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(8);
    let pool = state.pool.clone();
    tokio::spawn(async move {
        let mut rows = db::referrals::ledger(&pool);
        let mut buf = String::from(LEDGER_HEADER);
        while let Some(row) = rows.next().await {
            match row {
                Ok(row) => ledger_line(&mut buf, &row),
                Err(e) => {
                    tracing::error!(error = ?e, "ledger export failed mid-stream");
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
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            header::CONTENT_DISPOSITION,
            "attachment; filename=\"referrals.csv\"",
        ))
        .streaming(body))
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

/// Quotes a field when it holds a separator, a quote or a line break (RFC 4180).
pub fn csv_field(value: &str) -> String {
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::csv_field;

    #[test]
    fn fields_are_quoted_when_needed() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
    }
}
