#!/usr/bin/env bash
# Load benchmark of the follower's invite page and poster against a fresh sandbox instance.
#
#   bench/invite.sh                 # 20 s of GET /invite, 64 connections, 2 wrk threads
#   DURATION=30 CONNECTIONS=32 bench/invite.sh
#
# Needs PostgreSQL (postgres@127.0.0.1:5432, trust auth), Redis (127.0.0.1:6379), curl and wrk
# (Debian: apt-get install -y wrk). Builds the release binary, starts `fission serve` in sandbox
# mode on 127.0.0.1:18081 with a new database, signs a test follower in through the simulator's
# OAuth page (so the session cookie is a real one), then measures:
#   - GET /invite with that cookie (warm: the code is issued on the first request)
#   - the poster: the first GET /invite/poster.png (cold: render + store) and then warm GETs
# and stops the server and drops the database.
set -euo pipefail

cd "$(dirname "$0")/.."
PORT="${BENCH_PORT:-18081}"
DURATION="${DURATION:-20}"
CONNECTIONS="${CONNECTIONS:-64}"
DB="fission_bench_invite_$(date +%s)"
WORK="$(mktemp -d)"
BIN="${CARGO_TARGET_DIR:-target}/release/fission"
BASE="http://127.0.0.1:$PORT"
PSQL=(psql -h 127.0.0.1 -U postgres -v ON_ERROR_STOP=1)
SERVER_PID=""

cleanup() {
    local status=$?
    set +e
    if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID"
        for _ in $(seq 1 150); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$SERVER_PID" 2>/dev/null && kill -KILL "$SERVER_PID"
        wait "$SERVER_PID" 2>/dev/null
    fi
    if [[ $status -ne 0 && -s "$WORK/server.log" ]]; then
        echo "--- last lines of the server log ---" >&2
        tail -n 30 "$WORK/server.log" >&2
    fi
    "${PSQL[@]}" -d postgres -qc "DROP DATABASE IF EXISTS \"$DB\" WITH (FORCE)" >/dev/null 2>&1 \
        || echo "could not drop database $DB" >&2
    if command -v redis-cli >/dev/null; then
        redis-cli -h 127.0.0.1 -p 6379 --scan --pattern "$DB:*" 2>/dev/null \
            | xargs -r -n 500 redis-cli -h 127.0.0.1 -p 6379 DEL >/dev/null 2>&1
    fi
    rm -rf "$WORK"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

command -v wrk >/dev/null || { echo "wrk is needed: apt-get install -y wrk" >&2; exit 1; }

echo "== machine"
echo "cpus:   $(nproc) x $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
echo "memory: $(free -g | awk '/^Mem:/ {print $2}') GiB total"
echo "load:   $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min, before the run)"
echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo none)"

echo "== build"
cargo build --release --bin fission

echo "== server (sandbox mode, database $DB, port $PORT)"
env -u WECHAT_APPID -u WECHAT_SECRET -u WECHAT_ENCODING_AES_KEY \
    DATABASE_URL="postgres://postgres@127.0.0.1:5432/$DB" \
    REDIS_URL="redis://127.0.0.1:6379" \
    FISSION_REDIS_PREFIX="$DB:" \
    FISSION_BIND="127.0.0.1:$PORT" \
    FISSION_PUBLIC_URL="$BASE" \
    FISSION_STORAGE="file://$WORK/data" \
    FISSION_CONFIG="$WORK/none.toml" \
    FISSION_SESSION_KEY="$(head -c 48 /dev/urandom | base64 -w0)0123456789abcdef0123456789" \
    RUST_LOG=warn \
    "$BIN" serve >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
deadline=$((SECONDS + 60))
until [[ "$(curl -s -o /dev/null -w '%{http_code}' "$BASE/readyz")" == 200 ]]; do
    kill -0 "$SERVER_PID" 2>/dev/null || { echo "server exited before becoming ready" >&2; exit 1; }
    ((SECONDS < deadline)) || { echo "server not ready after 60 s" >&2; exit 1; }
    sleep 0.2
done

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
grep -E '^(VmRSS|VmHWM):' "/proc/$SERVER_PID/status"
echo "load:   $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min, after the run)"
