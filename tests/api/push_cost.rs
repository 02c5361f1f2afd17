//! What a credited push reads does not grow with the tables. With 30,000 credits of other
//! inviters already recorded, twenty pushes crediting a new inviter read a few rows of
//! `referrals` each, not the ledger. (The risk screening once looked up "when was this inviter
//! themselves credited" by walking the ledger's time index — every batch a little slower than
//! the one before, until the push path fell behind.) And the push writers plan their statements
//! once and keep the plans: plans made while the tables held a few rows are made again once
//! the tables have grown (Fission analyzes a table that doubled), and look rows up by key.
//! Counted with PostgreSQL's own statistics, which the app's connections
//! report once idle; the inserted events witness that they did.

use chrono::Utc;

use crate::helpers::{openid, Deployment, FakeWechat, TestApp};

const LEDGER: i64 = 30_000;
const PUSHES: i64 = 20;

/// Rows of `tables` read so far (through any index or a sequential scan), and rows inserted into
/// `witness` so far, as the statistics have them.
async fn counters(app: &TestApp, tables: &[&str], witness: &str) -> (i64, i64) {
    sqlx::query_as(
        "SELECT (SELECT COALESCE(sum(idx_tup_read), 0)::bigint FROM pg_stat_user_indexes
                 WHERE relname = ANY($1))
              + (SELECT COALESCE(sum(seq_tup_read), 0)::bigint FROM pg_stat_user_tables
                 WHERE relname = ANY($1)),
                (SELECT COALESCE(sum(n_tup_ins), 0)::bigint FROM pg_stat_user_tables
                 WHERE relname = $2)",
    )
    .bind(tables)
    .bind(witness)
    .fetch_one(&app.pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn a_credited_push_reads_a_few_ledger_rows_however_long_the_ledger() {
    let (_wechat, app, campaign) = app_and_default_campaign().await;
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
    let before = flushed(&app, &["referrals"], "events", LEDGER).await;
    // (After the default campaign began: it was created with the app.)
    let t0 = Utc::now().timestamp();
    let per_push = reads_per_follow(&app, &["referrals"], before, "pcfriend", scene, t0).await;
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

async fn app_and_default_campaign() -> (FakeWechat, TestApp, i64) {
    let wechat = FakeWechat::start(100_000, None).await;
    let app = TestApp::spawn(&Deployment::new(&wechat)).await;
    let campaign: i64 = sqlx::query_scalar("SELECT id FROM campaigns WHERE is_default")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    (wechat, app, campaign)
}

/// `PUSHES` new friends follow through `scene`, from CreateTime `t0` on, one at a time; returns
/// the rows of `tables` each read, on average, counting from the counters `before`.
async fn reads_per_follow(
    app: &TestApp,
    tables: &[&str],
    before: (i64, i64),
    friends: &str,
    scene: i64,
    t0: i64,
) -> i64 {
    for i in 0..PUSHES {
        let r = app
            .subscribe(&openid(friends, i as usize), Some(scene), t0 + i)
            .await;
        assert_eq!(r.status(), 200);
    }
    let (read_after, _) = flushed(app, tables, "events", before.1 + PUSHES).await;
    (read_after - before.0) / PUSHES
}

/// The counters once the statistics count at least `inserted` rows of `witness` (connections
/// report what they did when idle, within seconds; a witness row written after some work says
/// that work is counted too).
async fn flushed(app: &TestApp, tables: &[&str], witness: &str, inserted: i64) -> (i64, i64) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let now = counters(app, tables, witness).await;
        if now.1 >= inserted {
            return now;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the statistics never counted the rows inserted into {witness}: {now:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// The tables a follow through a code looks rows up in that grow with the account.
const GROWING: [&str; 4] = ["users", "events", "referrals", "invite_codes"];

#[tokio::test]
async fn plans_made_while_the_tables_were_small_follow_them_as_they_grow() {
    let (_wechat, app, campaign) = app_and_default_campaign().await;
    // The statistics say what a new deployment's do — a few rows — and autovacuum, which would
    // refresh them sooner or later, does not run.
    for table in GROWING {
        sqlx::query(&format!(
            "ALTER TABLE {table} SET (autovacuum_enabled = false)"
        ))
        .execute(&app.pool)
        .await
        .unwrap();
    }
    let inviter = openid("pginviter", 0);
    let scene = app.issue_code(&inviter).await["scene_id"].as_i64().unwrap();
    sqlx::query(&format!("ANALYZE {}", GROWING.join(", ")))
        .execute(&app.pool)
        .await
        .unwrap();
    let t0 = Utc::now().timestamp();
    // The first follows: the writers plan their statements on these tables.
    let before = counters(&app, &GROWING, "events").await;
    reads_per_follow(&app, &GROWING, before, "pgearly", scene, t0).await;
    let (_, early) = counters(&app, &GROWING, "events").await;

    let mut analyzed_before = Vec::new();
    for table in GROWING {
        analyzed_before.push(analyze_state(&app, table).await.0);
    }
    // A month later: many followers, events, credits and codes.
    sqlx::query(
        "WITH u AS (
            INSERT INTO users (openid, subscribed, followed_since, state_at)
            SELECT 'oGrownFollower' || g, true, now() - g * interval '10 s',
                   now() - g * interval '10 s'
            FROM generate_series(1, $2) g
            RETURNING openid, followed_since
         ), e AS (
            INSERT INTO events (dedupe_key, openid, create_time, msg_type, event, outcome)
            SELECT 'grown-' || u.openid, u.openid, u.followed_since, 'event', 'subscribe',
                   'credited'
            FROM u
            RETURNING id, openid, create_time
         ), c AS (
            INSERT INTO invite_codes (owner_openid, permanent, scene_str, expires_at, ticket, url)
            SELECT 'oGrownInviter' || g, false, 'grown' || g, now() + interval '7 days',
                   't' || g, 'http://grown/' || g
            FROM generate_series(1, $2 / 10) g
         )
         INSERT INTO referrals (campaign_id, invitee_openid, inviter_openid, scene, event_id, credited_at)
         SELECT $1, e.openid, 'oGrownInviter' || (e.id % 100), 'grown1', e.id, e.create_time FROM e",
    )
    .bind(campaign)
    .bind(LEDGER)
    .execute(&app.pool)
    .await
    .unwrap();

    flushed(&app, &GROWING, "events", early + LEDGER).await;
    // Fission analyzes the tables that doubled (within seconds).
    for (table, before) in GROWING.into_iter().zip(analyzed_before) {
        until_stats(&app, table, "an analyze after growing", |(count, _, _)| {
            count > before
        })
        .await;
    }
    let before = counters(&app, &GROWING, "events").await;
    let per_push = reads_per_follow(&app, &GROWING, before, "pglate", scene, t0 + PUSHES).await;
    let credited: i64 =
        sqlx::query_scalar("SELECT count(*) FROM referrals WHERE inviter_openid = $1")
            .bind(&inviter)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(credited, 2 * PUSHES, "every push credited the inviter");
    assert!(
        per_push < 100,
        "each credited push read {per_push} rows of tables of {LEDGER} rows"
    );
}

/// `table`'s analyze count (by anyone) and changes since its last analyze, as the statistics
/// have them.
async fn analyze_state(app: &TestApp, table: &str) -> (i64, i64, i64) {
    sqlx::query_as(
        "SELECT analyze_count, n_mod_since_analyze, n_live_tup FROM pg_stat_user_tables
         WHERE relname = $1",
    )
    .bind(table)
    .fetch_one(&app.pool)
    .await
    .unwrap()
}

/// Waits (a minute at most) until `done` holds for `table`'s analyze state.
async fn until_stats(
    app: &TestApp,
    table: &str,
    what: &str,
    done: impl Fn((i64, i64, i64)) -> bool,
) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let state = analyze_state(app, table).await;
        if done(state) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{table}: {what} did not happen within a minute: {state:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// Every batch updates the same few rows — its inviters' code counters and leaderboard rows —
/// in place. Such a table does not grow, and analyzing it again only makes every push writer
/// plan its statements again: under a steady load, Fission once analyzed those tables every five
/// seconds and each time the pushes of the next tenth of a second waited (the 300 pushes/s p99).
/// Only a table that grew is analyzed.
#[tokio::test]
async fn tables_updated_in_place_are_not_analyzed_again_only_grown_ones() {
    let (_wechat, app, campaign) = app_and_default_campaign().await;
    let inviter = openid("ipinviter", 0);
    let scene = app.issue_code(&inviter).await["scene_id"].as_i64().unwrap();
    let t0 = Utc::now().timestamp();
    let r = app.subscribe(&openid("ipfriend", 0), Some(scene), t0).await;
    assert_eq!(r.status(), 200);
    const HOT: [&str; 2] = ["invite_codes", "inviter_stats"];
    for table in HOT.iter().chain(&["events"]) {
        sqlx::raw_sql(&format!(
            "ALTER TABLE {table} SET (autovacuum_enabled = false); ANALYZE {table}"
        ))
        .execute(&app.pool)
        .await
        .unwrap();
    }
    let mut analyzed_before = Vec::new();
    for table in HOT {
        analyzed_before.push(analyze_state(&app, table).await.0);
    }
    // What 1,200 batches crediting this inviter do to its two rows.
    sqlx::raw_sql(&format!(
        "DO $$ BEGIN FOR i IN 1..1200 LOOP
            UPDATE invite_codes SET scans = scans + 1, follows = follows + 1 WHERE scene_id = {scene};
            UPDATE inviter_stats SET invites = invites + 1, reached_at = now()
            WHERE campaign_id = {campaign} AND openid = '{inviter}';
         END LOOP; END $$"
    ))
    .execute(&app.pool)
    .await
    .unwrap();
    for table in HOT {
        until_stats(&app, table, "counting 1,200 changes", |(_, changed, _)| {
            changed >= 1200
        })
        .await;
    }
    // A table that grows: 3,000 events. Fission analyzes it within seconds, in a round that
    // also saw the changes above.
    let events_analyzed = analyze_state(&app, "events").await.0;
    sqlx::query(
        "INSERT INTO events (dedupe_key, openid, create_time, msg_type, event, outcome)
         SELECT 'ip-' || g, 'oInPlace' || g, now(), 'event', 'subscribe', 'recorded'
         FROM generate_series(1, 3000) g",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    until_stats(
        &app,
        "events",
        "Fission's analyze of a grown table",
        |(count, _, _)| count > events_analyzed,
    )
    .await;
    for (table, before) in HOT.iter().zip(analyzed_before) {
        let (count, changed, rows) = analyze_state(&app, table).await;
        assert_eq!(
            count, before,
            "{table} ({rows} rows, {changed} changed in place) was analyzed again"
        );
    }
}

/// What a notice reads does not grow with what its inviter was told before. An inviter with
/// 3,000 friends, all told already, and five new ones, among 30 other inviters' 27,000
/// credits: gathering the news reads the new credits, not the 3,000 (it once walked every
/// credit of the inviter to find those above the watermark). The seeding, then the news, each
/// run on a connection of their own that ends with a witness row: once the statistics count the
/// witness, they count that connection's reads too (seeding reads the whole ledger; counted
/// late, it would land in the news's window).
#[tokio::test]
async fn a_notice_reads_the_news_not_the_inviters_history() {
    const OTHERS: i64 = 27_000;
    const HISTORY: i64 = 3_000;
    const NEWS: i64 = 5;
    let (_wechat, app, campaign) = app_and_default_campaign().await;
    let inviter = openid("pcnoticed", 0);
    let mut seeding = app.pool.acquire().await.unwrap();
    sqlx::query(
        "WITH e AS (
            INSERT INTO events (dedupe_key, openid, create_time, msg_type, event, outcome)
            SELECT 'told-' || g, 'oToldFriend' || g, now() - ($2 - g) * interval '1 s', 'event',
                   'subscribe', 'credited'
            FROM generate_series(1, $2) g
            RETURNING id, openid, create_time
         )
         INSERT INTO referrals (campaign_id, invitee_openid, inviter_openid, scene, event_id, credited_at)
         SELECT $1, e.openid,
                CASE WHEN row_number() OVER (ORDER BY e.id) <= $4 THEN 'oOtherInviter' || (e.id % 30)
                     ELSE $3 END,
                'qrscene_1', e.id, e.create_time
         FROM e ORDER BY e.id",
    )
    .bind(campaign)
    .bind(OTHERS + HISTORY + NEWS)
    .bind(&inviter)
    .bind(OTHERS)
    .execute(&mut *seeding)
    .await
    .unwrap();
    // Told up to their 3,000th credit.
    sqlx::query(
        "INSERT INTO inviter_stats (campaign_id, openid, invites, reached_at, notified_through)
         SELECT $1, $2, count(*), max(credited_at),
                (SELECT id FROM referrals WHERE inviter_openid = $2 ORDER BY id OFFSET $3 - 1 LIMIT 1)
         FROM referrals WHERE inviter_openid = $2",
    )
    .bind(campaign)
    .bind(&inviter)
    .bind(HISTORY)
    .execute(&mut *seeding)
    .await
    .unwrap();
    // Statistics as a deployment has them for a history of days (Fission analyzes a table
    // that doubled; autovacuum does too).
    sqlx::query("ANALYZE referrals")
        .execute(&mut *seeding)
        .await
        .unwrap();
    sqlx::query("CREATE TABLE notice_cost_witness (x int)")
        .execute(&mut *seeding)
        .await
        .unwrap();
    sqlx::query("INSERT INTO notice_cost_witness VALUES (1)")
        .execute(&mut *seeding)
        .await
        .unwrap();
    drop(seeding);
    let before = flushed(&app, &["referrals"], "notice_cost_witness", 1).await;

    let mut conn = app.pool.acquire().await.unwrap();
    let news = fission::db::notices::news(
        &mut *conn,
        &fission::domain::OpenId::parse(&inviter).unwrap(),
    )
    .await
    .unwrap();
    sqlx::query("INSERT INTO notice_cost_witness VALUES (2)")
        .execute(&mut *conn)
        .await
        .unwrap();
    drop(conn);
    assert_eq!(news.len(), 1, "one campaign has news");
    assert_eq!(
        news[0].new_friends, NEWS,
        "the friends since the last notice"
    );
    assert_eq!(news[0].total as i64, HISTORY + NEWS);

    let (after, _) = flushed(&app, &["referrals"], "notice_cost_witness", 2).await;
    let read = after - before.0;
    assert!(
        read < 100,
        "gathering {NEWS} new credits read {read} rows of referrals (the inviter has {HISTORY} told)"
    );
}
