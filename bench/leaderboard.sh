#!/usr/bin/env bash
# Leaderboard latency with a large ledger: 1,000,000 referrals across 100,000 inviters (a
# skewed distribution, as in a real campaign), then GET /api/v1/leaderboard?limit=100 under
# wrk. Usage: bench/leaderboard.sh [referrals] [inviters]   (defaults 1000000 100000)
source "$(dirname "$0")/lib.sh"
REFERRALS="${1:-1000000}"
INVITERS="${2:-100000}"
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install -y wrk" >&2; exit 1; }

bench_machine
bench_build
bench_start_server

echo "== seeding $REFERRALS referrals across $INVITERS inviters"
time "${PSQL[@]}" -d "$DB" -q <<SQL
INSERT INTO users (openid, nickname, subscribed)
SELECT 'oInviter' || g, '邀请人' || g, true FROM generate_series(1, $INVITERS) g;
INSERT INTO events (dedupe_key, openid, create_time, msg_type, event, event_key)
SELECT 'bench:' || g, 'oInvitee' || g, now() - make_interval(secs => g), 'event', 'subscribe', 'qrscene_1'
FROM generate_series(1, $REFERRALS) g;
-- Skewed: inviter = floor(N * r^3) + 1 puts a few inviters far ahead, like a real board.
INSERT INTO referrals (campaign_id, invitee_openid, inviter_openid, scene, event_id, credited_at)
SELECT c.id, e.openid, 'oInviter' || (floor($INVITERS * power(random(), 3))::int + 1), '1', e.id, e.create_time
FROM events e CROSS JOIN (SELECT id FROM campaigns WHERE is_default) c;
INSERT INTO inviter_stats (campaign_id, openid, invites, reached_at)
SELECT campaign_id, inviter_openid, count(*), max(credited_at) FROM referrals GROUP BY 1, 2;
ANALYZE;
SQL
echo "inviters on the board: $("${PSQL[@]}" -d "$DB" -tAc 'select count(*) from inviter_stats')"

URL="$BASE/api/v1/leaderboard?limit=100"
echo "== GET /api/v1/leaderboard?limit=100, one client at a time (latency), 20 s"
wrk -t1 -c1 -d20s --latency -H "Authorization: Bearer $BENCH_ADMIN_TOKEN" "$URL"
echo "== the same with 8 concurrent clients (throughput), 20 s"
wrk -t2 -c8 -d20s --latency -H "Authorization: Bearer $BENCH_ADMIN_TOKEN" "$URL"
echo "== the same through psql (server-side execution time of the query)"
"${PSQL[@]}" -d "$DB" -c "EXPLAIN ANALYZE SELECT s.openid, u.nickname, s.invites FROM (SELECT openid, invites, reached_at FROM inviter_stats WHERE campaign_id = 1 AND invites > 0 ORDER BY invites DESC, reached_at ASC, openid ASC LIMIT 100) s LEFT JOIN users u ON u.openid = s.openid" | tail -3
bench_server_memory
