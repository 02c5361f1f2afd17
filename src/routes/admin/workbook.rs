//! The exports as Excel workbooks (.xlsx): one sheet per report, Chinese headers, China time
//! as real Excel dates, names next to openids. Rows stream from the database cursor into a
//! worksheet kept on disk as it is written (rust_xlsxwriter's constant-memory mode), so a large
//! ledger does not sit in memory; the finished file is sent whole.

use actix_web::{web, HttpResponse};
use chrono::{DateTime, NaiveDateTime, Utc};
use futures_util::stream::BoxStream;
use futures_util::StreamExt;
use rust_xlsxwriter::{Format, Workbook, Worksheet, XlsxError};
use sqlx::PgPool;
use tokio::sync::mpsc;

use super::export::BoardQuery;
use crate::db;
use crate::db::dashboard::BoardLine;
use crate::db::referrals::LedgerRow;
use crate::domain::time::china;
use crate::error::AppError;
use crate::state::AppState;

const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";
/// Excel's last row (1,048,576) less the header: a longer ledger is cut here (the CSV has all).
const MAX_ROWS: u32 = 1_048_575;

/// A report's sheet: its name, its columns (header, width) and how one row is written.
struct Sheet<T> {
    name: &'static str,
    columns: &'static [(&'static str, f64)],
    write: fn(&mut Worksheet, u32, &T, &Format) -> Result<(), XlsxError>,
}

const LEDGER: Sheet<LedgerRow> = Sheet {
    name: "邀请记录",
    columns: &[
        ("邀请时间", 17.0),
        ("活动", 16.0),
        ("邀请人", 14.0),
        ("邀请人 openid", 32.0),
        ("被邀请人", 14.0),
        ("被邀请人 openid", 32.0),
        ("状态", 8.0),
        ("撤销时间", 17.0),
        ("场景值", 14.0),
    ],
    write: ledger_row,
};

const BOARD: Sheet<BoardLine> = Sheet {
    name: "排行榜",
    columns: &[
        ("排名", 6.0),
        ("昵称", 16.0),
        ("openid", 32.0),
        ("邀请人数", 10.0),
        ("达到时间", 17.0),
    ],
    write: board_row,
};

fn china_time(t: DateTime<Utc>) -> NaiveDateTime {
    t.with_timezone(&china()).naive_local()
}

fn ledger_row(s: &mut Worksheet, r: u32, row: &LedgerRow, time: &Format) -> Result<(), XlsxError> {
    s.write_datetime_with_format(r, 0, china_time(row.credited_at), time)?;
    s.write_string(r, 1, &row.campaign_name)?;
    s.write_string(r, 2, row.inviter_nickname.as_deref().unwrap_or(""))?;
    s.write_string(r, 3, &row.inviter_openid)?;
    s.write_string(r, 4, row.invitee_nickname.as_deref().unwrap_or(""))?;
    s.write_string(r, 5, &row.invitee_openid)?;
    match row.revoked_at {
        Some(at) => {
            s.write_string(r, 6, "已撤销")?;
            s.write_datetime_with_format(r, 7, china_time(at), time)?;
        }
        None => {
            s.write_string(r, 6, "有效")?;
        }
    }
    s.write_string(r, 8, &row.scene)?;
    Ok(())
}

fn board_row(s: &mut Worksheet, r: u32, row: &BoardLine, time: &Format) -> Result<(), XlsxError> {
    s.write_number(r, 0, row.rank as f64)?;
    s.write_string(r, 1, row.nickname.as_deref().unwrap_or(""))?;
    s.write_string(r, 2, &row.openid)?;
    s.write_number(r, 3, f64::from(row.invites))?;
    s.write_datetime_with_format(r, 4, china_time(row.reached_at), time)?;
    Ok(())
}

/// Writes `rows` into a one-sheet workbook on a blocking thread, fed through a bounded channel.
async fn workbook<T, F>(pool: PgPool, sheet: Sheet<T>, rows: F) -> Result<Vec<u8>, AppError>
where
    T: Send + 'static,
    F: for<'a> FnOnce(&'a PgPool) -> BoxStream<'a, sqlx::Result<T>> + Send + 'static,
{
    let (tx, mut rx) = mpsc::channel::<T>(1024);
    let reader = tokio::spawn(async move {
        let mut rows = rows(&pool);
        while let Some(row) = rows.next().await {
            if tx.send(row?).await.is_err() {
                break; // the sheet is full
            }
        }
        Ok::<(), sqlx::Error>(())
    });
    let writer = tokio::task::spawn_blocking(move || -> Result<Vec<u8>, XlsxError> {
        let mut book = Workbook::new();
        let header = Format::new().set_bold();
        let time = Format::new().set_num_format("yyyy-mm-dd hh:mm");
        let ws = book.add_worksheet_with_constant_memory()?;
        ws.set_name(sheet.name)?;
        for (col, (title, width)) in (0u16..).zip(sheet.columns) {
            ws.set_column_width(col, *width)?;
            ws.write_string_with_format(0, col, *title, &header)?;
        }
        ws.set_freeze_panes(1, 0)?;
        let mut r = 1;
        while let Some(row) = rx.blocking_recv() {
            if r > MAX_ROWS {
                tracing::warn!(sheet = sheet.name, "export cut at Excel's row limit");
                break;
            }
            (sheet.write)(ws, r, &row, &time)?;
            r += 1;
        }
        drop(rx);
        book.save_to_buffer()
    });
    let file = writer
        .await
        .map_err(|e| AppError::Internal(anyhow::anyhow!("xlsx writer: {e}")))?
        .map_err(|e| AppError::Internal(anyhow::anyhow!("writing the xlsx: {e}")))?;
    reader
        .await
        .map_err(|e| AppError::Internal(anyhow::anyhow!("xlsx reader: {e}")))??;
    Ok(file)
}

fn attachment(filename: &str, file: Vec<u8>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(XLSX)
        .insert_header((
            actix_web::http::header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{filename}\""),
        ))
        .body(file)
}

pub async fn referrals(state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    let file = workbook(state.pool.clone(), LEDGER, |pool| {
        db::referrals::ledger(pool)
    })
    .await?;
    Ok(attachment("referrals.xlsx", file))
}

/// The leaderboard of `?campaign=ID` (or `all`; default: the campaign running now).
pub async fn leaderboard(
    state: web::Data<AppState>,
    q: web::Query<BoardQuery>,
) -> Result<HttpResponse, AppError> {
    let campaign = super::selected_campaign(&state, q.campaign.as_deref()).await?;
    let file = workbook(state.pool.clone(), BOARD, move |pool| {
        db::dashboard::board_stream(pool, campaign)
    })
    .await?;
    Ok(attachment("leaderboard.xlsx", file))
}
