# Shared by the benchmark scripts: machine facts, a release build, and a `fission serve` on a
# fresh database that is stopped and dropped on exit. Source it; then call bench_start_server.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
PORT="${BENCH_PORT:-18080}"
DB="fission_bench_${BENCH_NAME:-run}_$(date +%s)"
WORK="$(mktemp -d)"
# BENCH_BIN: a fission binary built elsewhere (bench_build still builds the tree's own).
BIN="${BENCH_BIN:-${CARGO_TARGET_DIR:-target}/release/fission}"
PSQL=(psql -h 127.0.0.1 -U postgres -v ON_ERROR_STOP=1)
BASE="http://127.0.0.1:$PORT"
SERVER_PID=""
BENCH_ADMIN_TOKEN="bench-token"

# Stops the server of bench_start_server, if one runs: SIGTERM, then SIGKILL after 15 s.
bench_stop_server() {
    if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" || true
        for _ in $(seq 1 150); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
        if kill -0 "$SERVER_PID" 2>/dev/null; then
            echo "server did not stop within 15 s of SIGTERM; killing it" >&2
            kill -KILL "$SERVER_PID" || true
        fi
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    SERVER_PID=""
}

# Drops the database $DB and the server's keys in Redis. A script that starts a second server
# stops the first, calls this, and sets DB to a new name before bench_start_server.
bench_drop_database() {
    "${PSQL[@]}" -d postgres -qc "DROP DATABASE IF EXISTS \"$DB\" WITH (FORCE)" >/dev/null 2>&1 \
        || echo "could not drop database $DB" >&2
    if command -v redis-cli >/dev/null; then
        redis-cli -h 127.0.0.1 -p 6379 --scan --pattern "$DB:*" 2>/dev/null \
            | xargs -r -n 500 redis-cli -h 127.0.0.1 -p 6379 DEL >/dev/null 2>&1 || true
    fi
}

bench_cleanup() {
    local status=$?
    set +e
    bench_stop_server
    if [[ $status -ne 0 && -s "$WORK/server.log" ]]; then
        echo "--- last lines of the server log ---" >&2
        tail -n 30 "$WORK/server.log" >&2
    fi
    bench_drop_database
    rm -rf "$WORK"
    exit "$status"
}
trap bench_cleanup EXIT
trap 'exit 130' INT TERM

bench_machine() {
    echo "== machine"
    echo "cpus:   $(nproc) x $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
    echo "memory: $(free -g | awk '/^Mem:/ {print $2}') GiB total"
    echo "load:   $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min, before the run)"
    echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo none)"
}

bench_build() {
    echo "== build"
    cargo build --release --bin fission
}

# Waits (60 s at most) until URL answers STATUS; exits if process PID dies first.
#   bench_wait_ready NAME PID URL STATUS
bench_wait_ready() {
    local name=$1 pid=$2 url=$3 status=$4
    local deadline=$((SECONDS + 60))
    until [[ "$(curl -s -o /dev/null -w '%{http_code}' "$url")" == "$status" ]]; do
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "$name exited before becoming ready" >&2
            exit 1
        fi
        if ((SECONDS >= deadline)); then
            echo "$name not ready after 60 s" >&2
            exit 1
        fi
        sleep 0.2
    done
}

# Starts the release binary in sandbox mode on a new database and waits for /readyz. Extra
# NAME=VALUE arguments are added to the server's environment.
bench_start_server() {
    echo "== server (database $DB, port $PORT)"
    env -u WECHAT_APPID -u WECHAT_SECRET -u WECHAT_ENCODING_AES_KEY \
        DATABASE_URL="postgres://postgres@127.0.0.1:5432/$DB" \
        REDIS_URL="redis://127.0.0.1:6379" \
        FISSION_REDIS_PREFIX="$DB:" \
        FISSION_BIND="127.0.0.1:$PORT" \
        FISSION_PUBLIC_URL="$BASE" \
        FISSION_STORAGE="file://$WORK/data" \
        FISSION_CONFIG="$WORK/none.toml" \
        FISSION_ADMIN_TOKEN="$BENCH_ADMIN_TOKEN" \
        WECHAT_TOKEN=fission \
        RUST_LOG=warn \
        "$@" \
        "$BIN" serve >"$WORK/server.log" 2>&1 &
    SERVER_PID=$!
    bench_wait_ready server "$SERVER_PID" "$BASE/readyz" 200
    echo "ready (pid $SERVER_PID)"
}

# Gives followers oBenchInviter1..N a permanent invite code with scene 1..N, for --mode
# credited (rows written directly: the load measures the callback, not issuance).
# The load generator (benches/callback_load.rs), built with the release profile like the server
# (`cargo bench` would build the library again under the bench profile): prints its path, or
# BENCH_LOADGEN's when set. Exits when it cannot be built.
bench_loadgen() {
    local loadgen="${BENCH_LOADGEN:-}"
    if [[ -z "$loadgen" ]]; then
        loadgen=$(cargo build --release --bench callback_load --message-format=json 2>"$WORK/loadgen-build.log" \
            | python3 -c 'import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "callback_load":
        print(m["executable"])')
    fi
    if [[ ! -x "$loadgen" ]]; then
        tail -n 30 "$WORK/loadgen-build.log" >&2 || true
        echo "could not build the load generator (cargo build --release --bench callback_load)" >&2
        exit 1
    fi
    echo "$loadgen"
}

bench_seed_codes() {
    local n="$1"
    "${PSQL[@]}" -d "$DB" -qc "INSERT INTO invite_codes (owner_openid, permanent, scene_id, quota_slot, ticket, url)
        SELECT 'oBenchInviter' || g, true, g, g, 'ticket' || g, 'http://bench.invalid/' || g
        FROM generate_series(1, $n) g"
    "${PSQL[@]}" -d "$DB" -qc "SELECT setval('permanent_scene_seq', $n)" >/dev/null
}

bench_server_memory() {
    grep -E '^(VmRSS|VmHWM):' "/proc/$SERVER_PID/status"
}
