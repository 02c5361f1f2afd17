//! `fission import-followers`: records every existing follower as "already followed" so they
//! can never be credited as someone's new invitee. Resumable: the cursor of the last page
//! stored is kept in the database, and a rerun continues from it.

use anyhow::Context;
use serde_json::json;

use crate::db;
use crate::services::Services;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportReport {
    pub pages: u32,
    pub followers: u64,
    pub total: i64,
}

/// Pages through `/cgi-bin/user/get` (10,000 followers a page). `restart` ignores a saved cursor.
pub async fn import_followers(
    state: &Services,
    restart: bool,
    progress: impl Fn(&ImportReport),
) -> anyhow::Result<ImportReport> {
    let mut cursor: Option<String> = if restart {
        None
    } else {
        db::state::get(&state.pool, db::state::IMPORT_CURSOR)
            .await?
            .and_then(|v| {
                v.get("next_openid")
                    .and_then(|n| n.as_str())
                    .map(str::to_string)
            })
    };
    let mut report = ImportReport::default();
    loop {
        let page = state
            .wechat
            .followers(cursor.as_deref())
            .await
            .context("listing followers (user/get)")?;
        report.total = page.total;
        let ids = page.data.map(|d| d.openid).unwrap_or_default();
        if !ids.is_empty() {
            db::users::mark_imported(&state.pool, &ids)
                .await
                .context("recording followers")?;
            report.followers += ids.len() as u64;
        }
        report.pages += 1;
        progress(&report);
        if page.count == 0 || page.next_openid.is_empty() || ids.is_empty() {
            break;
        }
        db::state::set(
            &state.pool,
            db::state::IMPORT_CURSOR,
            &json!({ "next_openid": page.next_openid }),
        )
        .await?;
        cursor = Some(page.next_openid);
    }
    db::state::delete(&state.pool, db::state::IMPORT_CURSOR).await?;
    Ok(report)
}
