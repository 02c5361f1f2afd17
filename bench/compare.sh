#!/usr/bin/env bash
# Fission against the Python reference app (bench/peer: Flask + wechatpy + psycopg 3 under
# gunicorn, 4 sync workers) on POST /wechat/callback, side by side on this machine, in one run.
#
#   bench/compare.sh
#   DURATION=20 REPS=5 RATES="500 1000 3000" bench/compare.sh
#
# What it measures, in this order:
#   1. pgbench: a two-insert transaction (unique dedupe insert + credit insert) with 32 clients
#      on a database of its own: what PostgreSQL here allows per transaction.
#   1b. pgbench: the least a batch of credited pushes writes in Fission's own schema (migrated by
#      the binary measured): FLOOR_BATCH new followers (created and locked, then their presence),
#      their events, their credits, and the leaderboard rows of the 20 inviters — in one
#      transaction per batch, FLOOR_CLIENTS clients (Fission's push writers). No HTTP, no
#      Fission, no load generator, no code counters, risk rows or notice jobs: what PostgreSQL
#      here allows for the facts alone, in pushes/s, and the CPU a push costs it (its ticks over
#      the credits written).
#   2. Plaintext pushes. Fission (release binary, sandbox mode, fresh database, 20 seeded codes)
#      and the peer (fresh database, 20 codes). Closed loop, 64 connections, --mode credited
#      (every push a new follower through one of the 20 codes), REPS runs each, interleaved
#      Fission, peer, Fission, peer...: pushes/s, p50/p99 and the server's memory after each run
#      (RSS summed over its processes, and PSS, which splits the pages gunicorn's workers share),
#      and the CPU a recorded push cost the server, PostgreSQL and the load generator (ticks of
#      the whole run over the events rows it added). Then the same closed loop, one run each, at
#      each of SWEEP connections: a server bound by the machine keeps its rate, one bound by how
#      long its pushes wait gains with more connections.
#      Then open loop at each of RATES pushes/s against both, OPEN_REPS rounds (Fission first
#      at each rate: the peer, overrun at the highest rates, is slow to take a connection
#      again): latency from each push's due time, p50/p99, and the share answered after WeChat's 5 s deadline (or not at all). A
#      single stall of the disk (a COMMIT waiting 60-100 ms for fsync was seen here) sets the
#      p99 of a 10 s run at a low rate, so one round says little; the summary gives medians.
#   3. Safe mode (AES). Fission started again with WECHAT_APPID and WECHAT_ENCODING_AES_KEY (so
#      not in sandbox mode: the WeChat API calls of its outbox go to a stub on loopback that
#      answers "ok"), the peer started again with the same key; the same closed loop (and the
#      open loop if OPEN_MODES has "safe").
#   4. A summary: medians of the closed-loop runs and the Fission/peer ratio; the CPU per push,
#      and the bound it sets: the machine's cores over (the floor's PostgreSQL CPU + Fission's
#      server + the load generator per push): the rate Fission could not pass here even if
#      PostgreSQL cost it no more than the floor; the open-loop table, medians of the rounds
#      (each round's p99 in brackets).
# Before each measurement it waits (QUIET_MAX s at most) until every server it started is idle,
# so work left over from one run (Fission's outbox, a backlog in the peer) does not slow the
# next. The load generator runs on the same cores as the servers, as does PostgreSQL.
#
# Environment: DURATION (measured s, 10)  WARMUP (s, 2)  REPS (3)  OPEN_REPS (3)  CONNECTIONS (64)  CODES (20)
#   SWEEP ("32 128 256"; empty: none)  RATES ("300 600 1000 2000")  OPEN_MODES ("plain"; "plain safe" adds safe mode)
#   PGBENCH_SECONDS (5)  PGBENCH_CLIENTS (32)  FLOOR_BATCH (24)  FLOOR_CLIENTS (2)  QUIET_MAX (60)  BENCH_PORT (18180, Fission)
#   PEER_PORT (18190)  STUB_PORT (18199)  CARGO_TARGET_DIR (where cargo builds)
#   BENCH_SKIP_BUILD=1 (no `cargo build` of the server)  BENCH_BIN (a fission binary to measure
#   instead of the tree's)  BENCH_LOADGEN (a callback_load binary; no cargo at all with both)
#
# Needs PostgreSQL (postgres@127.0.0.1:5432, trust auth) with pgbench, Redis (127.0.0.1:6379),
# python3 (bench/peer/run.sh creates the peer's venv on first use, from PyPI). Everything it
# starts is stopped and every database it creates is dropped on exit.
BENCH_NAME=compare
# Ports of its own: no clash with a server another bench script left on 18080.
BENCH_PORT="${BENCH_PORT:-18180}"
source "$(dirname "$0")/lib.sh"

DURATION="${DURATION:-10}"
WARMUP="${WARMUP:-2}"
REPS="${REPS:-3}"
OPEN_REPS="${OPEN_REPS:-3}"
CONNECTIONS="${CONNECTIONS:-64}"
SWEEP="${SWEEP-32 128 256}"
CODES="${CODES:-20}"
RATES="${RATES:-300 600 1000 2000}"
OPEN_MODES="${OPEN_MODES:-plain}"
PGBENCH_SECONDS="${PGBENCH_SECONDS:-5}"
PGBENCH_CLIENTS="${PGBENCH_CLIENTS:-32}"
FLOOR_BATCH="${FLOOR_BATCH:-24}"
FLOOR_CLIENTS="${FLOOR_CLIENTS:-2}"
QUIET_MAX="${QUIET_MAX:-60}"
PEER_PORT="${PEER_PORT:-18190}"
STUB_PORT="${STUB_PORT:-18199}"
PEER_BASE="http://127.0.0.1:$PEER_PORT"
FISSION_DB_BASE="$DB"
PEER_DB="fission_bench_peer_$(date +%s)"
PGBENCH_DB="fission_bench_pgbench_$(date +%s)"
FLOOR_DB="fission_bench_floor_$(date +%s)"
RESULTS="$WORK/results.jsonl"
SAFE_APPID="wxb3nchc0mpare0001"
SAFE_KEY="$(head -c 64 /dev/urandom | base64 -w0 | tr -dc 'A-Za-z0-9' | head -c 43)"
PEER_PID=""
PEER_CURRENT_DB=""
STUB_PID=""
LOADGEN=""

command -v pgbench >/dev/null || { echo "pgbench is not installed (Debian: postgresql-client)" >&2; exit 1; }
command -v python3 >/dev/null || { echo "python3 is needed (the peer, the summary)" >&2; exit 1; }

stop_pid() {
    local pid="$1"
    if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null || true
    fi
    return 0
}

drop_db() {
    "${PSQL[@]}" -d postgres -qc "DROP DATABASE IF EXISTS \"$1\" WITH (FORCE)" >/dev/null 2>&1 \
        || echo "could not drop database $1" >&2
}

compare_cleanup() {
    local status=$?
    set +e
    stop_pid "$PEER_PID"
    stop_pid "$STUB_PID"
    drop_db "$PEER_DB"
    drop_db "${PEER_DB}_safe"
    drop_db "$PGBENCH_DB"
    drop_db "$FLOOR_DB"
    if [[ $status -ne 0 && -s "$WORK/peer.log" ]]; then
        echo "--- last lines of the peer log ---" >&2
        tail -n 20 "$WORK/peer.log" >&2
    fi
    # lib.sh's cleanup stops Fission, drops its database, removes $WORK and exits with $status.
    (exit "$status")
    bench_cleanup
}
trap compare_cleanup EXIT

# Processes of a server: the pid and its children (gunicorn's workers).
tree_pids() {
    local pid
    for pid in "$@"; do
        [[ -n "$pid" ]] || continue
        echo "$pid"
        pgrep -P "$pid" || true
    done
}

# Ticks of PID's /proc/PID/stat fields A and B summed, counted after "pid (comm) " (12 and 13:
# its user and system time; 14 and 15: that of its children it has waited for); 0 if gone.
stat_ticks() {
    local t
    t=$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | awk -v a="$2" -v b="$3" '{print $a + $b}') || t=0
    echo "${t:-0}"
}

# CPU ticks (user + system) used so far by the given processes and their children.
cpu_ticks() {
    local total=0 pid
    for pid in $(tree_pids "$@"); do
        total=$((total + $(stat_ticks "$pid" 12 13)))
    done
    echo "$total"
}

# CPU ticks used so far by PostgreSQL: its running processes, and the backends that have
# exited (in the postmaster's children's time), so connections opened and closed during a run
# are counted too.
pg_ticks() {
    local total=0 pid postmaster
    postmaster=$(pgrep -o -x postgres) || { echo 0; return; }
    for pid in $(pgrep -x postgres); do
        total=$((total + $(stat_ticks "$pid" 12 13)))
    done
    echo $((total + $(stat_ticks "$postmaster" 14 15)))
}

# Waits until the servers use less than 5% of a core over a second (QUIET_MAX s at most).
wait_quiet() {
    local hz before after waited=0
    hz=$(getconf CLK_TCK)
    while ((waited < QUIET_MAX)); do
        before=$(cpu_ticks "$@")
        sleep 1
        after=$(cpu_ticks "$@")
        waited=$((waited + 1))
        if (((after - before) * 100 < 5 * hz)); then
            break
        fi
    done
    if ((waited > 1)); then
        echo "   (waited ${waited} s for the servers to go idle)"
    fi
}

# Resident memory of a server and its children, MiB (shared pages counted in each process).
rss_mib() {
    local total=0 pid kb
    for pid in $(tree_pids "$@"); do
        kb=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status" 2>/dev/null) || kb=0
        total=$((total + ${kb:-0}))
    done
    echo $((total / 1024))
}

# Proportional set size of a server and its children, MiB (shared pages split between them).
pss_mib() {
    local total=0 pid kb
    for pid in $(tree_pids "$@"); do
        kb=$(awk '/^Pss:/ {print $2}' "/proc/$pid/smaps_rollup" 2>/dev/null) || kb=0
        total=$((total + ${kb:-0}))
    done
    echo $((total / 1024))
}

machine() {
    bench_machine
    echo "postgres: $("${PSQL[@]}" -d postgres -tAc "SELECT 'synchronous_commit=' || current_setting('synchronous_commit') || ' fsync=' || current_setting('fsync') || ' shared_buffers=' || current_setting('shared_buffers') || ' max_connections=' || current_setting('max_connections')")"
    echo "processes using the most CPU right now (top, 1 s sample):"
    top -b -n 2 -d 1 -o %CPU -w 160 2>/dev/null \
        | awk '/^top -/ {frame++} frame == 2' | sed -n '7,14p' | cut -c1-120 \
        || echo "  (top unavailable)"
}

build() {
    if [[ -n "${BENCH_SKIP_BUILD:-}" ]]; then
        echo "== build skipped (BENCH_SKIP_BUILD)"
    else
        bench_build
    fi
    [[ -x "$BIN" ]] || { echo "no release binary at $BIN" >&2; exit 1; }
    local loadgen
    loadgen=$(bench_loadgen)
    # Private copies: a build in the same target directory during the run changes nothing here.
    cp "$BIN" "$WORK/fission"
    cp "$loadgen" "$WORK/callback_load"
    echo "fission:        $BIN ($(stat -c %y "$BIN" | cut -d. -f1))"
    echo "load generator: $loadgen"
    BIN="$WORK/fission"
    LOADGEN="$WORK/callback_load"
    bench/peer/run.sh venv
}

# Runs pgbench (prepared statements, PGBENCH_SECONDS) on database DB with ARGS, prints its
# summary and keeps its output for pgbench_figure; exits if it fails.
#   run_pgbench DB ARGS...
PGBENCH_OUT=""
run_pgbench() {
    local db=$1
    shift
    PGBENCH_OUT=$(pgbench -h 127.0.0.1 -U postgres -n -M prepared -T "$PGBENCH_SECONDS" "$@" "$db" 2>&1) || {
        echo "$PGBENCH_OUT" >&2
        echo "pgbench failed" >&2
        exit 1
    }
    echo "$PGBENCH_OUT" | grep -E '^(number of transactions actually processed|number of failed|latency average|tps)' | sed 's/^/   /'
}

# A figure of the last run_pgbench: the number after "NAME = ".
pgbench_figure() {
    echo "$PGBENCH_OUT" | awk -F' = ' -v name="$1" '$1 == name {split($2, a, " "); print a[1]; exit}'
}

pgbench_ceiling() {
    echo "== pgbench: two-insert transaction, $PGBENCH_CLIENTS clients, ${PGBENCH_SECONDS} s (database $PGBENCH_DB)"
    "${PSQL[@]}" -d postgres -qc "CREATE DATABASE \"$PGBENCH_DB\""
    "${PSQL[@]}" -d "$PGBENCH_DB" -q -f bench/peer/schema.sql
    # The peer's transaction without its SELECT: a push recorded once, a credit once per follower.
    cat >"$WORK/push.pgbench" <<'SQL'
\set n random(1, 1000000000000)
\set scene random(1, 20)
BEGIN;
INSERT INTO events (from_user, create_time, event, event_key)
    VALUES ('opgbench' || :client_id || '_' || :n, :n, 'subscribe', 'qrscene_' || :scene)
    ON CONFLICT DO NOTHING;
INSERT INTO referrals (invitee, inviter, scene, event_id)
    VALUES ('opgbench' || :client_id || '_' || :n, 'oPeerInviter' || :scene, :scene, currval('events_id_seq'))
    ON CONFLICT (invitee) DO NOTHING;
COMMIT;
SQL
    run_pgbench "$PGBENCH_DB" -c "$PGBENCH_CLIENTS" -j 2 -f "$WORK/push.pgbench"
    local tps lat
    tps=$(pgbench_figure tps)
    lat=$(pgbench_figure 'latency average')
    echo "{\"kind\":\"pgbench\",\"tps\":${tps:-0},\"latency_ms\":${lat:-0},\"clients\":$PGBENCH_CLIENTS}" >>"$RESULTS"
    drop_db "$PGBENCH_DB"
}

pgbench_floor() {
    echo "== pgbench: batches of $FLOOR_BATCH credited pushes in Fission's schema, $FLOOR_CLIENTS clients, ${PGBENCH_SECONDS} s (database $FLOOR_DB)"
    "${PSQL[@]}" -d postgres -qc "CREATE DATABASE \"$FLOOR_DB\""
    DATABASE_URL="postgres://postgres@127.0.0.1:5432/$FLOOR_DB" "$BIN" migrate >/dev/null
    local tps pg0 pg_us=0 credits
    pg0=$(pg_ticks)
    run_pgbench "$FLOOR_DB" -c "$FLOOR_CLIENTS" -j "$FLOOR_CLIENTS" -D batch="$FLOOR_BATCH" \
        -f bench/floor.pgbench
    # What a push cost PostgreSQL here: the least any server writing these rows asks of it.
    credits=$(count_rows "$FLOOR_DB" referrals)
    if [[ "$credits" =~ ^[0-9]+$ ]] && ((credits > 0)); then
        pg_us=$((($(pg_ticks) - pg0) * 10000 / credits))
        echo "   PostgreSQL CPU per push: $pg_us µs ($credits credits)"
    fi
    tps=$(pgbench_figure tps)
    echo "{\"kind\":\"floor\",\"tps\":${tps:-0},\"batch\":$FLOOR_BATCH,\"clients\":$FLOOR_CLIENTS,\"pg_us\":$pg_us}" >>"$RESULTS"
    drop_db "$FLOOR_DB"
}

# A minimal WeChat API on loopback for Fission outside sandbox mode: a token for
# stable_token / token, {"errcode":0} for everything else.
start_stub() {
    python3 - "$STUB_PORT" >"$WORK/stub.log" 2>&1 <<'PY' &
import json, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

class Api(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        if self.path.startswith(("/cgi-bin/stable_token", "/cgi-bin/token")):
            reply = {"access_token": "bench-stub-token", "expires_in": 7200}
        else:
            reply = {"errcode": 0, "errmsg": "ok"}
        body = json.dumps(reply).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = answer

    def log_message(self, *args):
        pass

ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Api).serve_forever()
PY
    STUB_PID=$!
    for _ in $(seq 1 50); do
        curl -s -o /dev/null "http://127.0.0.1:$STUB_PORT/cgi-bin/ping" && return 0
        sleep 0.1
    done
    echo "the WeChat API stub did not start" >&2
    exit 1
}

# start_fission plain|safe: a fresh database with CODES seeded codes.
start_fission() {
    bench_stop_server
    bench_drop_database
    DB="${FISSION_DB_BASE}_$1"
    if [[ "$1" == safe ]]; then
        bench_start_server WECHAT_APPID="$SAFE_APPID" WECHAT_SECRET=bench-secret \
            WECHAT_ENCODING_AES_KEY="$SAFE_KEY" \
            WECHAT_API_BASE="http://127.0.0.1:$STUB_PORT" \
            WECHAT_MP_BASE="http://127.0.0.1:$STUB_PORT" \
            WECHAT_OPEN_BASE="http://127.0.0.1:$STUB_PORT"
    else
        bench_start_server
    fi
    bench_seed_codes "$CODES"
    echo "seeded $CODES invite codes"
}

# start_peer plain|safe
start_peer() {
    stop_pid "$PEER_PID"
    PEER_PID=""
    local db="$PEER_DB" extra=()
    if [[ "$1" == safe ]]; then
        db="${PEER_DB}_safe"
        extra=(WECHAT_ENCODING_AES_KEY="$SAFE_KEY" WECHAT_APPID="$SAFE_APPID")
        drop_db "$PEER_DB"
    fi
    PEER_CURRENT_DB="$db"
    echo "== peer (database $db, port $PEER_PORT, $1)"
    env -u WECHAT_ENCODING_AES_KEY -u WECHAT_APPID "${extra[@]}" \
        PEER_PORT="$PEER_PORT" PEER_DB="$db" PEER_CODES="$CODES" WECHAT_TOKEN=fission \
        bench/peer/run.sh >"$WORK/peer.log" 2>&1 &
    PEER_PID=$!
    # An unsigned GET is refused (403) once the app is up.
    bench_wait_ready peer "$PEER_PID" "$PEER_BASE/wechat/callback" 403
    echo "ready (pid $PEER_PID, workers $(pgrep -P "$PEER_PID" | tr '\n' ' '))"
}

# load SERVER SECURITY KIND REP [generator args]: one run of the generator; its JSON summary,
# tagged, goes to $RESULTS.
load() {
    local server="$1" security="$2" kind="$3" rep="$4"
    shift 4
    local target pids db safe_args=()
    if [[ "$server" == fission ]]; then
        target="$BASE"
        pids=("$SERVER_PID")
        db="$DB"
    else
        target="$PEER_BASE"
        pids=("$PEER_PID")
        db="$PEER_CURRENT_DB"
    fi
    if [[ "$security" == safe ]]; then
        safe_args=(--aes-key "$SAFE_KEY" --appid "$SAFE_APPID")
    fi
    echo "-- $server, $security, $kind${rep:+ run $rep}: $*"
    wait_quiet "$SERVER_PID" "$PEER_PID" "$STUB_PID"
    # CPU of the whole run (warm-up included) over the events it recorded: what a push costs
    # the server, PostgreSQL and the load generator. A 10 ms tick is the unit.
    local out status=0 events0 server0 pg0 timed=()
    events0=$(count_rows "$db" events)
    server0=$(cpu_ticks "${pids[@]}")
    pg0=$(pg_ticks)
    rm -f "$WORK/loadgen.cpu"
    [[ -x /usr/bin/time ]] && timed=(/usr/bin/time -f '%U %S' -o "$WORK/loadgen.cpu")
    out=$(WECHAT_TOKEN=fission RUST_BACKTRACE=0 "${timed[@]}" "$LOADGEN" --bench --target "$target" \
        --json --warmup "$WARMUP" --duration "$DURATION" --mode credited --scenes "1-$CODES" \
        "${safe_args[@]}" "$@" 2>&1) || status=$?
    local server_cpu=$(($(cpu_ticks "${pids[@]}") - server0)) pg_cpu=$(($(pg_ticks) - pg0))
    local events=0 events1 loadgen_cpu
    events1=$(count_rows "$db" events)
    [[ "$events0$events1" =~ ^[0-9]+$ ]] && events=$((events1 - events0))
    loadgen_cpu=$(awk '{printf "%d", ($1 + $2) * 100}' "$WORK/loadgen.cpu" 2>/dev/null) || loadgen_cpu=""
    echo "$out" | grep -v '^{' | sed 's/^/   /'
    local server_us="" pg_us="" loadgen_us=""
    if ((events > 0)); then
        server_us=$((server_cpu * 10000 / events))
        pg_us=$((pg_cpu * 10000 / events))
        [[ -n "$loadgen_cpu" ]] && loadgen_us=$((loadgen_cpu * 10000 / events))
        echo "   CPU per recorded push ($events in the run): server $server_us µs," \
            "PostgreSQL $pg_us µs${loadgen_us:+, load generator $loadgen_us µs}"
    fi
    local rss pss json
    rss=$(rss_mib "${pids[@]}")
    pss=$(pss_mib "${pids[@]}")
    echo "   server memory after: RSS $rss MiB, PSS $pss MiB (all its processes)"
    json=$(echo "$out" | grep '^{' | tail -n 1)
    if [[ -z "$json" ]]; then
        json='{"ok":0,"errors":0,"throughput_rps":0,"failed":true}'
        echo "   (generator exited $status without a summary)"
    fi
    python3 -c 'import json, sys
d = json.loads(sys.argv[1])
d.update(server=sys.argv[2], security=sys.argv[3], kind=sys.argv[4], rep=sys.argv[5],
         rss_mib=int(sys.argv[6]), pss_mib=int(sys.argv[7]))
for key, value in zip(("server_us", "pg_us", "loadgen_us"), sys.argv[8:11]):
    if value:
        d[key] = int(value)
print(json.dumps(d))' "$json" "$server" "$security" "$kind" "$rep" "$rss" "$pss" \
        "$server_us" "$pg_us" "$loadgen_us" >>"$RESULTS"
}

count_rows() {
    "${PSQL[@]}" -d "$1" -tAc "SELECT count(*) FROM $2" 2>/dev/null || echo "?"
}

# What the servers recorded (a push answered `success` but not recorded would show here).
phase_rows() {
    echo "== rows written in this phase: Fission events $(count_rows "$DB" events)," \
        "referrals $(count_rows "$DB" referrals); peer events $(count_rows "$PEER_CURRENT_DB" events)," \
        "referrals $(count_rows "$PEER_CURRENT_DB" referrals)"
}

closed_loop() {
    local security="$1" rep
    echo "== closed loop, $security: $CONNECTIONS connections, credited, ${WARMUP}+${DURATION} s, $REPS runs each, interleaved"
    for rep in $(seq 1 "$REPS"); do
        load fission "$security" closed "$rep" --connections "$CONNECTIONS"
        load peer "$security" closed "$rep" --connections "$CONNECTIONS"
    done
}

# The closed loop (plaintext, one run each) at each of SWEEP connections: a server bound by the
# machine keeps its rate; one bound by how long each push waits gains with more connections.
sweep() {
    local connections
    [[ -n "$SWEEP" ]] || return 0
    echo "== closed loop, plain, at other numbers of connections: $SWEEP"
    for connections in $SWEEP; do
        load fission plain sweep "$connections" --connections "$connections"
        load peer plain sweep "$connections" --connections "$connections"
    done
}

open_loop() {
    local security="$1" rate rep
    [[ " $OPEN_MODES " == *" $security "* ]] || return 0
    echo "== open loop, $security: credited, ${WARMUP}+${DURATION} s per rate, latency from the due time, $OPEN_REPS rounds"
    for rep in $(seq 1 "$OPEN_REPS"); do
        for rate in $RATES; do
            load fission "$security" open "$rep" --rate "$rate"
            load peer "$security" open "$rep" --rate "$rate"
        done
    done
}

summary() {
    echo
    echo "== summary"
    python3 - "$RESULTS" <<'PY'
import json, os, statistics, sys

rows = [json.loads(line) for line in open(sys.argv[1])]

def med(values):
    return statistics.median(values) if values else float("nan")

def by_server(runs):
    """(security, server, its runs) for each mode and server that has runs, in table order."""
    for security in ("plain", "safe"):
        for server in ("fission", "peer"):
            rs = [r for r in runs if r["server"] == server and r["security"] == security]
            if rs:
                yield security, server, rs

for r in rows:
    if r.get("kind") == "pgbench":
        print(f"pgbench two-insert transaction, {r['clients']} clients: {r['tps']:.0f} tps, "
              f"latency average {r['latency_ms']:.2f} ms")
    if r.get("kind") == "floor":
        print(f"pgbench batches of {r['batch']} credited pushes in Fission's schema, {r['clients']} "
              f"clients: {r['tps']:.0f} batches/s = {r['tps'] * r['batch']:.0f} pushes/s")

closed = [r for r in rows if r.get("kind") == "closed"]
if closed:
    print()
    print("closed loop, credited, medians of the runs (pushes/s of each run in brackets)")
    print(f"{'':22} {'pushes/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7} {'RSS MiB':>8} {'PSS MiB':>8}   runs")
    medians = {}
    for security, server, rs in by_server(closed):
        rps = med([r["throughput_rps"] for r in rs])
        medians[(security, server)] = rps
        runs = ", ".join(f"{r['throughput_rps']:.0f}" for r in rs)
        print(f"{server + ' ' + security:22} {rps:9.0f} {med([r.get('p50_ms', 0) for r in rs]):8.2f} "
              f"{med([r.get('p99_ms', 0) for r in rs]):8.2f} {sum(r.get('errors', 0) for r in rs):7d} "
              f"{max(r['rss_mib'] for r in rs):8d} {max(r.get('pss_mib', 0) for r in rs):8d}   [{runs}]")
        if server == "peer" and rps:
            ratio = medians.get((security, "fission"), 0) / rps
            print(f"{'  Fission / peer':22} {ratio:8.1f}x   (the issue asks for >= 10x)")

measured = [r for r in closed if "server_us" in r]
if measured:
    print()
    print("CPU per recorded push in the closed-loop runs, medians, µs (whole run, warm-up included)")
    print(f"{'':22} {'server':>8} {'postgres':>9} {'loadgen':>8} {'all':>8}")
    for security, server, rs in by_server(measured):
        parts = [med([r[k] for r in rs if k in r]) for k in ("server_us", "pg_us", "loadgen_us")]
        print(f"{server + ' ' + security:22} {parts[0]:8.0f} {parts[1]:9.0f} {parts[2]:8.0f} "
              f"{sum(p for p in parts if p == p):8.0f}")
    # The most this machine allows at all: every core busy, and PostgreSQL asked for no more
    # than the floor's rows cost it (the server and the load generator as measured).
    floor = [r for r in rows if r.get("kind") == "floor" and r.get("pg_us")]
    fission = [r for r in measured if r["server"] == "fission" and r["security"] == "plain"]
    peer = medians.get(("plain", "peer"))
    if floor and fission and peer:
        server_us = med([r["server_us"] for r in fission])
        loadgen_us = med([r["loadgen_us"] for r in fission if "loadgen_us" in r])
        cores = os.cpu_count() or 1
        per_push = floor[0]["pg_us"] + server_us + loadgen_us
        bound = cores * 1e6 / per_push
        print(f"bound, plain: {cores} cores / ({floor[0]['pg_us']} µs PostgreSQL at the floor + "
              f"{server_us:.0f} server + {loadgen_us:.0f} load generator) = {bound:.0f} pushes/s "
              f"= {bound / peer:.1f}x the peer's median")

swept = [r for r in rows if r.get("kind") == "sweep"]
if swept:
    print()
    print("closed loop, plain, by connections (one run each; 64: the medians above)")
    print(f"{'connections':>11} {'fission/s':>10} {'p99 ms':>8} {'peer/s':>8} {'p99 ms':>8} {'ratio':>6}")
    by = {}
    for r in swept:
        by.setdefault(int(r["rep"]), {})[r["server"]] = (r["throughput_rps"], r.get("p99_ms", 0))
    for server in ("fission", "peer"):
        rs = [r for r in closed if r["server"] == server and r["security"] == "plain"]
        if rs:
            by.setdefault(int(rs[0].get("connections") or 64), {})[server] = (
                med([r["throughput_rps"] for r in rs]), med([r.get("p99_ms", 0) for r in rs]))
    for connections in sorted(by):
        f, p = by[connections].get("fission", (0, 0)), by[connections].get("peer", (0, 0))
        ratio = f[0] / p[0] if p[0] else float("nan")
        print(f"{connections:11d} {f[0]:10.0f} {f[1]:8.1f} {p[0]:8.0f} {p[1]:8.1f} {ratio:5.1f}x")

opened = [r for r in rows if r.get("kind") == "open"]
if opened:
    print()
    print("open loop, credited: latency of the answered pushes, from each push's due time; medians")
    print("of the rounds (max: the highest of them; errors and late starts: summed); '> 5 s' is the")
    print("share of all pushes answered after WeChat's 5 s deadline or not at all")
    print(f"{'rate/s':>7} {'server':16} {'answered/s':>10} {'p50 ms':>9} {'p99 ms':>9} {'max ms':>9} "
          f"{'errors':>7} {'> 5 s':>7} {'late':>6}   p99 of each round")
    groups = {}
    for r in opened:
        groups.setdefault((r.get("rate_rps") or 0, r["security"], r["server"]), []).append(r)
    order = sorted(groups, key=lambda k: (k[1] != "plain", k[0], k[2] != "fission"))
    for key in order:
        rs = groups[key]
        rate, security, server = key
        rounds = ", ".join(f"{r.get('p99_ms', 0):.1f}" for r in rs)
        print(f"{rate:7.0f} {server + ' ' + security:16} "
              f"{med([r.get('throughput_rps', 0) for r in rs]):10.0f} {med([r.get('p50_ms', 0) for r in rs]):9.2f} "
              f"{med([r.get('p99_ms', 0) for r in rs]):9.2f} {max(r.get('max_ms', 0) for r in rs):9.0f} "
              f"{sum(r.get('errors', 0) for r in rs):7d} {100 * med([r.get('over_5s_share', 0) for r in rs]):6.1f}% "
              f"{sum(r.get('late_starts') or 0 for r in rs):6d}   [{rounds}]")
PY
}

ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
machine
build
pgbench_ceiling
pgbench_floor

start_fission plain
start_peer plain
closed_loop plain
sweep
open_loop plain
phase_rows

start_stub
start_fission safe
start_peer safe
closed_loop safe
open_loop safe
phase_rows

echo
echo "load after the run: $(cut -d' ' -f1-3 /proc/loadavg)"
summary
