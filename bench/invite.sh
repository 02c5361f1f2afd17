#!/usr/bin/env bash
# Load benchmark of the follower's invite page and poster against a fresh sandbox instance.
#
#   bench/invite.sh                 # 20 s of GET /invite, 64 connections, 2 wrk threads
#   DURATION=30 CONNECTIONS=32 bench/invite.sh
#
# Needs PostgreSQL (postgres@127.0.0.1:5432, trust auth), Redis (127.0.0.1:6379), curl and wrk
# (Debian: apt-get install -y wrk). Builds the release binary, starts `fission serve` in sandbox
# mode on 127.0.0.1:18080 (BENCH_PORT) with a new database, signs a test follower in through the simulator's
# OAuth page (so the session cookie is a real one), then measures:
#   - GET /invite with that cookie (warm: the code is issued on the first request)
#   - the poster: the first GET /invite/poster.png (cold: render + store) and then warm GETs
# and stops the server and drops the database.
BENCH_NAME=invite
source "$(dirname "$0")/lib.sh"
DURATION="${DURATION:-20}"
CONNECTIONS="${CONNECTIONS:-64}"
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install -y wrk" >&2; exit 1; }

bench_machine
bench_build
bench_start_server FISSION_SESSION_KEY="$(head -c 48 /dev/urandom | base64 -w0)0123456789abcdef0123456789"

echo "== sign a follower in through the simulator"
JAR="$WORK/cookies"
curl -s -o /dev/null -X POST --data-urlencode "nickname=压测用户" "$BASE/sandbox/users"
OPENID="$(curl -s "$BASE/sandbox/users" | grep -o '/sandbox/inbox/[A-Za-z0-9_-]*' | head -n1 | sed 's|.*/||')"
[[ -n "$OPENID" ]] || { echo "no simulated user" >&2; exit 1; }
curl -s -o /dev/null -X POST "$BASE/sandbox/users/$OPENID/follow"
# /invite → the simulator's authorize URL; approving as the user → /invite/oauth?code&state.
AUTHORIZE="$(curl -s -c "$JAR" -b "$JAR" -o /dev/null -w '%{redirect_url}' "$BASE/invite")"
AUTHORIZE="${AUTHORIZE%%#*}&sandbox_openid=$OPENID"
CALLBACK="$(curl -s -o /dev/null -w '%{redirect_url}' "$AUTHORIZE")"
curl -s -c "$JAR" -b "$JAR" -o /dev/null "$CALLBACK"
COOKIE="$(awk '$6 == "fission" {print $7}' "$JAR")"
[[ -n "$COOKIE" ]] || { echo "sign-in did not set a session cookie" >&2; exit 1; }
first="$(curl -s -o "$WORK/page.html" -w '%{http_code} %{time_total}' -b "fission=$COOKIE" "$BASE/invite")"
echo "first /invite (issues the code): HTTP ${first% *}, ${first#* } s"
grep -q 'invite-count' "$WORK/page.html" || { echo "the page is not the invite page" >&2; exit 1; }

cat >"$WORK/session.lua" <<LUA
wrk.headers["Cookie"] = "fission=$COOKIE"
LUA

echo "== GET /invite, warm, ${CONNECTIONS} connections, ${DURATION} s"
wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" --latency -s "$WORK/session.lua" "$BASE/invite"

echo "== poster"
cold="$(curl -s -o "$WORK/poster.jpg" -w '%{http_code} %{time_total}' -b "fission=$COOKIE" "$BASE/invite/poster.png")"
echo "cold GET /invite/poster.png (render + store): HTTP ${cold% *}, ${cold#* } s, $(stat -c %s "$WORK/poster.jpg") bytes"
for i in 1 2 3; do
    warm="$(curl -s -o /dev/null -w '%{time_total}' -b "fission=$COOKIE" "$BASE/invite/poster.png")"
    echo "warm GET /invite/poster.png #$i: ${warm} s"
done
echo "== GET /invite/poster.png, warm, 16 connections, 10 s"
wrk -t2 -c16 -d10s --latency -s "$WORK/session.lua" "$BASE/invite/poster.png"

echo "== server after the run"
bench_server_memory
echo "load:   $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min, after the run)"
