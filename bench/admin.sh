#!/usr/bin/env bash
# Latency of the dashboard's home and leaderboard pages with 1,000,000 referrals across
# 100,000 inviters, signed in as an operator.
#
#   bench/admin.sh                 # per page: 10 s with 1 connection, 10 s with 16
#   DURATION=30 CONNECTIONS=32 bench/admin.sh
#
# Needs PostgreSQL (postgres@127.0.0.1:5432, trust auth), Redis (127.0.0.1:6379) and wrk
# (Debian: apt-get install -y wrk). Builds the release binary, starts `fission serve` (sandbox
# mode) on 127.0.0.1:18080 (BENCH_PORT) with a new database, seeds it with generate_series, signs in with
# curl, runs wrk with bench/admin-session.lua on each page, then stops the server and drops
# the database. The machine's load average is printed before and after: other work on the
# machine shows up in the figures.
BENCH_NAME=admin
source "$(dirname "$0")/lib.sh"
DURATION="${DURATION:-10}"
CONNECTIONS="${CONNECTIONS:-16}"
PASSWORD="bench-password-$RANDOM$RANDOM"
command -v wrk >/dev/null || { echo "wrk is not installed (Debian: apt-get install -y wrk)" >&2; exit 1; }

bench_machine
bench_build
bench_start_server FISSION_ADMIN_PASSWORD="$PASSWORD"

echo "== seed: 1,000,000 referrals across 100,000 inviters"
started=$SECONDS
"${PSQL[@]}" -d "$DB" -q <<'SQL'
INSERT INTO users (openid, nickname, subscribed, followed_since)
SELECT 'oBenchInviter' || lpad(g::text, 15, '0'), '粉丝' || g, true, now() - interval '40 days'
FROM generate_series(1, 100000) g;
WITH e AS (
    INSERT INTO events (dedupe_key, openid, create_time, msg_type, event, outcome)
    VALUES ('bench-seed', 'oBenchSeed', now(), 'event', 'subscribe', 'credited') RETURNING id)
INSERT INTO referrals (campaign_id, invitee_openid, inviter_openid, scene, event_id, credited_at)
SELECT (SELECT id FROM campaigns WHERE is_default),
       'oBenchInvitee' || lpad(g::text, 15, '0'),
       -- Every inviter gets one, then a skewed board: low numbers invite far more.
       'oBenchInviter' || lpad((CASE WHEN g <= 100000 THEN g
           ELSE 1 + (g::bigint * 7919 % 100000) * (g::bigint * 7919 % 100000) / 100000
           END)::text, 15, '0'),
       'qrscene_' || (1 + g % 100000), (SELECT id FROM e),
       now() - make_interval(secs => g * 2)
FROM generate_series(1, 1000000) g;
INSERT INTO inviter_stats (campaign_id, openid, invites, reached_at)
SELECT campaign_id, inviter_openid, count(*), max(credited_at) FROM referrals
GROUP BY campaign_id, inviter_openid;
ANALYZE;
SQL
echo "seeded in $((SECONDS - started)) s: $("${PSQL[@]}" -d "$DB" -tAc 'select count(*) from referrals') referrals, $("${PSQL[@]}" -d "$DB" -tAc 'select count(*) from inviter_stats') inviters"

echo "== sign in"
JAR="$WORK/cookies"
csrf=$(curl -s -c "$JAR" -b "$JAR" "$BASE/admin/login" | sed -n 's/.*name="csrf" value="\([0-9a-f]*\)".*/\1/p' | head -n1)
code=$(curl -s -o /dev/null -w '%{http_code}' -c "$JAR" -b "$JAR" \
    --data-urlencode "csrf=$csrf" --data-urlencode "username=admin" \
    --data-urlencode "password=$PASSWORD" "$BASE/admin/login")
[[ "$code" == 303 ]] || { echo "login answered $code" >&2; exit 1; }
export FISSION_COOKIE="fission=$(awk '$6 == "fission" {print $7}' "$JAR")"

run() {
    local name=$1 path=$2
    echo "== $name: GET $path"
    [[ "$(curl -s -o /dev/null -w '%{http_code}' -H "Cookie: $FISSION_COOKIE" "$BASE$path")" == 200 ]] \
        || { echo "$path is not a 200 when signed in" >&2; exit 1; }
    # One connection: a page's own latency. Several: latency under load, queueing included.
    for c in 1 "$CONNECTIONS"; do
        echo "-- $c connection(s)"
        wrk -t1 -c"$c" -d"${DURATION}s" --timeout 10s --latency -s bench/admin-session.lua \
            "$BASE$path" | grep -E '^ +(50|99)%|Requests/sec|non-200|requests in|timeout'
    done
}
run "dashboard home" "/admin"
run "leaderboard, running campaign, page 1" "/admin/leaderboard"
run "leaderboard, page 1000 (ranks 49,951-50,000)" "/admin/leaderboard?page=1000"
run "leaderboard, all campaigns summed" "/admin/leaderboard?campaign=all"
run "leaderboard, nickname search" "/admin/leaderboard?q=%E7%B2%89%E4%B8%9D4242"

echo "== after"
echo "load:   $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min)"
bench_server_memory
