//! Exports as a growth team opens them in Excel: CSVs with a byte-order mark, China time,
//! campaign names and nicknames after the contract's columns; real .xlsx workbooks with Chinese
//! headers, read back here with an xlsx reader.

use std::io::Cursor;

use calamine::{open_workbook_from_rs, Data, DataType, Reader, Xlsx};
use chrono::{TimeZone, Utc};

use crate::admin_client::{with_admin, Operator};
use crate::helpers::{openid, Deployment, FakeWechat, TestApp};

const BOM: &str = "\u{feff}";
const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

/// 小明 invited 小红 at 2026-11-20 01:30 UTC (09:30 in China).
async fn seeded() -> (TestApp, FakeWechat, Operator, String, String) {
    let wechat = FakeWechat::start(100_000, None).await;
    let app = TestApp::spawn(&with_admin(Deployment::new(&wechat))).await;
    let inviter = openid("xlsxinv", 1);
    let friend = openid("xlsxfriend", 1);
    let scene = app.issue_code(&inviter).await["scene_id"].as_i64().unwrap();
    app.subscribe(&friend, Some(scene), Utc::now().timestamp())
        .await;
    let at = Utc.with_ymd_and_hms(2026, 11, 20, 1, 30, 0).unwrap();
    sqlx::query("UPDATE referrals SET credited_at = $1")
        .bind(at)
        .execute(&app.pool)
        .await
        .unwrap();
    sqlx::query("UPDATE inviter_stats SET reached_at = $1")
        .bind(at)
        .execute(&app.pool)
        .await
        .unwrap();
    fission::db::users::set_profile(&app.pool, &inviter, "小明", None)
        .await
        .unwrap();
    fission::db::users::set_profile(&app.pool, &friend, "小红", None)
        .await
        .unwrap();
    let mut operator = Operator::new(&app);
    operator.login().await;
    (app, wechat, operator, inviter, friend)
}

#[tokio::test]
async fn csv_exports_open_in_excel_with_names_and_china_time() {
    let (app, _wechat, mut operator, inviter, friend) = seeded().await;

    let ledger = operator.get("/admin/export/referrals.csv").await;
    assert_eq!(ledger.status(), 200);
    let text = ledger.text().await.unwrap();
    let text = text.strip_prefix(BOM).expect("starts with a UTF-8 BOM");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "invitee_openid,inviter_openid,campaign_id,scene,status,credited_at,revoked_at,\
         campaign_name,inviter_nickname,invitee_nickname"
    );
    let fields: Vec<&str> = lines[1].split(',').collect();
    assert_eq!(fields[0], friend);
    assert_eq!(fields[1], inviter);
    assert_eq!(fields[4], "credited");
    assert_eq!(
        fields[5], "2026-11-20T09:30:00+08:00",
        "China time, RFC 3339"
    );
    assert_eq!(&fields[7..], ["默认活动", "小明", "小红"]);

    let board = app
        .api_get("/admin/export/leaderboard.csv?campaign=all")
        .await;
    let text = board.text().await.unwrap();
    let text = text.strip_prefix(BOM).expect("starts with a UTF-8 BOM");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "rank,openid,nickname,invites,reached_at");
    assert_eq!(
        lines[1],
        format!("1,{inviter},小明,1,2026-11-20T09:30:00+08:00")
    );
}

fn sheet(bytes: Vec<u8>) -> (Vec<String>, Vec<Vec<Data>>) {
    let mut book: Xlsx<_> = open_workbook_from_rs(Cursor::new(bytes)).expect("an xlsx workbook");
    let names = book.sheet_names().to_vec();
    let range = book.worksheet_range(&names[0]).expect("the first sheet");
    (names, range.rows().map(|r| r.to_vec()).collect())
}

fn strings(row: &[Data]) -> Vec<String> {
    row.iter().map(|c| c.to_string()).collect()
}

#[tokio::test]
async fn xlsx_exports_read_back_with_chinese_headers() {
    let (app, _wechat, mut operator, inviter, friend) = seeded().await;
    let china_0930 = chrono::NaiveDate::from_ymd_opt(2026, 11, 20)
        .unwrap()
        .and_hms_opt(9, 30, 0)
        .unwrap();

    let ledger = operator.get("/admin/export/referrals.xlsx").await;
    assert_eq!(ledger.status(), 200);
    assert_eq!(ledger.headers()["content-type"], XLSX);
    let (names, rows) = sheet(ledger.bytes().await.unwrap().to_vec());
    assert_eq!(names, ["邀请记录"]);
    assert_eq!(
        strings(&rows[0]),
        [
            "邀请时间",
            "活动",
            "邀请人",
            "邀请人 openid",
            "被邀请人",
            "被邀请人 openid",
            "状态",
            "撤销时间",
            "场景值"
        ]
    );
    let row = &rows[1];
    assert_eq!(row[0].as_datetime(), Some(china_0930));
    assert_eq!(
        strings(&row[1..7]),
        [
            "默认活动",
            "小明",
            inviter.as_str(),
            "小红",
            friend.as_str(),
            "有效"
        ]
    );

    let by_token = app
        .api_get("/admin/export/leaderboard.xlsx?campaign=all")
        .await;
    assert_eq!(by_token.status(), 200);
    let (names, rows) = sheet(by_token.bytes().await.unwrap().to_vec());
    assert_eq!(names, ["排行榜"]);
    assert_eq!(
        strings(&rows[0]),
        ["排名", "昵称", "openid", "邀请人数", "达到时间"]
    );
    assert_eq!(strings(&rows[1][..4]), ["1", "小明", inviter.as_str(), "1"]);
    assert_eq!(rows[1][4].as_datetime(), Some(china_0930));

    // The leaderboard page links to both workbooks.
    let board = operator
        .get("/admin/leaderboard")
        .await
        .text()
        .await
        .unwrap();
    assert!(
        board.contains("href=\"/admin/export/referrals.xlsx\""),
        "{board}"
    );
    assert!(
        board.contains("/admin/export/leaderboard.xlsx?campaign="),
        "{board}"
    );

    // Without a session or the token: refused like the CSVs.
    let anonymous = app
        .http
        .get(format!("{}/admin/export/referrals.xlsx", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
}
