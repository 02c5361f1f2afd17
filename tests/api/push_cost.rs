//! What a credited push reads of the ledger does not grow with the ledger: with 30,000 credits
//! of other inviters already recorded, twenty pushes crediting a new inviter read a few rows of
//! `referrals` each, not the ledger. (The risk screening once looked up "when was this inviter
//! themselves credited" by walking the ledger's time index — every batch a little slower than
//! the one before, until the push path fell behind.) Counted with PostgreSQL's own statistics,
//! which the app's connections report once idle; the inserted events witness that they did.

use chrono::Utc;

use crate::helpers::{openid, Deployment, FakeWechat, TestApp};

const LEDGER: i64 = 30_000;
const PUSHES: i64 = 20;

/// Rows of `referrals` read so far (through any index or a sequential scan), and events
/// inserted so far, as the statistics have them.
async fn counters(app: &TestApp) -> (i64, i64) {
    sqlx::query_as(
        "SELECT (SELECT COALESCE(sum(idx_tup_read), 0)::bigint FROM pg_stat_user_indexes
                 WHERE relname = 'referrals')
              + (SELECT COALESCE(seq_tup_read, 0) FROM pg_stat_user_tables
                 WHERE relname = 'referrals'),
                (SELECT n_tup_ins FROM pg_stat_user_tables WHERE relname = 'events')",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn a_credited_push_reads_a_few_ledger_rows_however_long_the_ledger() {
    let wechat = FakeWechat::start(100_000, None).await;
    let app = TestApp::spawn(&Deployment::new(&wechat)).await;
    let campaign: i64 = sqlx::query_scalar("SELECT id FROM campaigns WHERE is_default")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    // A long ledger: fifty inviters' friends over the last days, grown faster than the
    // planner's statistics followed (autovacuum analyzes a busy table only now and then; here
    // not at all, so the plan is what stale statistics give).
    sqlx::query("ALTER TABLE referrals SET (autovacuum_enabled = false)")
        .execute(&app.pool)
        .await
        .unwrap();
    sqlx::query(
        "WITH e AS (
            INSERT INTO events (dedupe_key, openid, create_time, msg_type, event, outcome)
            SELECT 'seed-' || g, 'oSeedFriend' || g, now() - g * interval '10 s', 'event',
                   'subscribe', 'credited'
            FROM generate_series(1, $2) g
            RETURNING id, openid, create_time
         )
         INSERT INTO referrals (campaign_id, invitee_openid, inviter_openid, scene, event_id, credited_at)
         SELECT $1, e.openid, 'oSeedInviter' || (e.id % 50), 'qrscene_1', e.id, e.create_time FROM e",
    )
    .bind(campaign)
    .bind(LEDGER)
    .execute(&app.pool)
    .await
    .unwrap();

    let inviter = openid("pcinviter", 0);
    let scene = app.issue_code(&inviter).await["scene_id"].as_i64().unwrap();
    let (read_before, inserted_before) = flushed(&app, LEDGER).await;
    // (After the default campaign began: it was created with the app.)
    let t0 = Utc::now().timestamp();
    for i in 0..PUSHES {
        let r = app
            .subscribe(&openid("pcfriend", i as usize), Some(scene), t0 + i)
            .await;
        assert_eq!(r.status(), 200);
    }
    let (read_after, _) = flushed(&app, inserted_before + PUSHES).await;
    let per_push = (read_after - read_before) / PUSHES;
    let credited: i64 =
        sqlx::query_scalar("SELECT count(*) FROM referrals WHERE inviter_openid = $1")
            .bind(&inviter)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(credited, PUSHES, "every push credited the inviter");
    assert!(
        per_push < 100,
        "each credited push read {per_push} rows of a {LEDGER}-row ledger"
    );
}

/// The counters once the statistics count at least `inserted` events (the app's connections
/// report what they did when idle, within seconds).
async fn flushed(app: &TestApp, inserted: i64) -> (i64, i64) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let now = counters(app).await;
        if now.1 >= inserted {
            return now;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the statistics never counted the pushes' events: {now:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}
