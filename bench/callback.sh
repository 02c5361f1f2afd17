#!/usr/bin/env bash
# Load benchmark of POST /wechat/callback against a fresh sandbox instance.
#
#   bench/callback.sh [load generator args]
#   bench/callback.sh --connections 64 --duration 20 --mode subscribe
#   bench/callback.sh --mode credited --scenes 1-1000 --json
#
# Needs PostgreSQL (postgres@127.0.0.1:5432, trust auth) and Redis (127.0.0.1:6379).
# Builds the release binary, starts `fission serve` on 127.0.0.1:18080 with a new database,
# runs benches/callback_load.rs, prints the server's memory and the recorded events, then
# stops the server and drops the database.
set -euo pipefail

cd "$(dirname "$0")/.."
PORT="${BENCH_PORT:-18080}"
DB="fission_bench_$(date +%s)"
WORK="$(mktemp -d)"
BIN="${CARGO_TARGET_DIR:-target}/release/fission"
PSQL=(psql -h 127.0.0.1 -U postgres -v ON_ERROR_STOP=1)
SERVER_PID=""

cleanup() {
    local status=$?
    set +e
    if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID"
        for _ in $(seq 1 150); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
        if kill -0 "$SERVER_PID" 2>/dev/null; then
            echo "server did not stop within 15 s of SIGTERM; killing it" >&2
            kill -KILL "$SERVER_PID"
        fi
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

echo "== machine"
echo "cpus:   $(nproc) x $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
echo "memory: $(free -g | awk '/^Mem:/ {print $2}') GiB total"
echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo none)"

echo "== build"
cargo build --release --bin fission
cargo bench --bench callback_load --no-run

echo "== server (database $DB, port $PORT)"
env -u WECHAT_APPID -u WECHAT_SECRET -u WECHAT_ENCODING_AES_KEY -u FISSION_ADMIN_TOKEN \
    DATABASE_URL="postgres://postgres@127.0.0.1:5432/$DB" \
    REDIS_URL="redis://127.0.0.1:6379" \
    FISSION_REDIS_PREFIX="$DB:" \
    FISSION_BIND="127.0.0.1:$PORT" \
    FISSION_PUBLIC_URL="http://127.0.0.1:$PORT" \
    FISSION_STORAGE="file://$WORK/data" \
    FISSION_CONFIG="$WORK/none.toml" \
    WECHAT_TOKEN=fission \
    RUST_LOG=warn \
    "$BIN" serve >"$WORK/server.log" 2>&1 &
SERVER_PID=$!

deadline=$((SECONDS + 60))
until [[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/readyz")" == 200 ]]; do
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
        echo "server exited before becoming ready" >&2
        exit 1
    fi
    if ((SECONDS >= deadline)); then
        echo "server not ready after 60 s" >&2
        exit 1
    fi
    sleep 0.2
done
echo "ready (pid $SERVER_PID)"

echo "== load"
WECHAT_TOKEN=fission cargo bench --bench callback_load -- \
    --target "http://127.0.0.1:$PORT" "$@"

echo "== server after the run"
grep -E '^(VmRSS|VmHWM):' "/proc/$SERVER_PID/status"
echo "events rows: $("${PSQL[@]}" -d "$DB" -tAc 'select count(*) from events')"
