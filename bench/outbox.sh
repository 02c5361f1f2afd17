#!/usr/bin/env bash
# The outbox under the push load: how fast inviters' notices reach the stand-in WeChat while
# friends follow, and what is left to send when the load stops.
#
#   bench/outbox.sh
#   INVITERS=500 DURATION=20 NOTICE_DELAYS="2000 0" bench/outbox.sh
#
# For each of NOTICE_DELAYS (FISSION_NOTICE_DELAY_MS; 2000 is the default, 0 sends a notice as
# soon as a batch credits someone): `fission serve` in sandbox mode on a fresh database;
# INVITERS followers created in its WeChat simulator, each following and then writing a message
# (WeChat's 2023 rules: 5 customer-service messages within 48 h), each owning an invite code;
# then the closed loop of benches/callback_load.rs (CONNECTIONS, 64; every push a new follower
# credited through one of the codes) for WARMUP + DURATION s. Every half second it reads the
# message log (each notice sent, refused or parked) and the outbox (notice jobs pending). It
# prints pushes/s, messages sent per second over the load and from the first message to the
# last, the notice jobs pending when the load stopped and how long until none was (all sent,
# or parked for inviters WeChat allows no more), and the messages each inviter got (WeChat
# allows 5). A delay of DRAIN_MAX s or more holds every notice past the run: the push load
# without the outbox's work.
#
# Environment: INVITERS (500)  CONNECTIONS (64)  DURATION (10)  WARMUP (2)
#   NOTICE_DELAYS ("2000 0")  DRAIN_MAX (s to wait for the backlog, 60)  BENCH_BIN  BENCH_LOADGEN
# Needs PostgreSQL (postgres@127.0.0.1:5432, trust auth), Redis (127.0.0.1:6379) and python3.
BENCH_NAME=outbox
BENCH_PORT="${BENCH_PORT:-18280}"
source "$(dirname "$0")/lib.sh"

INVITERS="${INVITERS:-500}"
CONNECTIONS="${CONNECTIONS:-64}"
DURATION="${DURATION:-10}"
WARMUP="${WARMUP:-2}"
NOTICE_DELAYS="${NOTICE_DELAYS:-2000 0}"
DRAIN_MAX="${DRAIN_MAX:-60}"
DB_BASE="$DB"

[[ -n "${BENCH_BIN:-}" ]] || bench_build
LOADGEN=$(bench_loadgen)
bench_machine

# Creates the inviters in the simulator (follow, then a message: the 48 h allowance) and gives
# each an invite code with scene 1..INVITERS.
make_inviters() {
    python3 - "$BASE/sandbox" "$INVITERS" <<'PY'
import re, sys, urllib.parse, urllib.request

base, n = sys.argv[1], int(sys.argv[2])

class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args):
        return None

opener = urllib.request.build_opener(NoRedirect)

def post(path, **form):
    data = urllib.parse.urlencode(form).encode()
    try:
        opener.open(urllib.request.Request(base + path, data=data, method="POST"), timeout=30).read()
    except urllib.error.HTTPError as e:
        if e.code not in (302, 303):
            raise

for i in range(n):
    post("/users", nickname=f"inviter{i + 1}")
page = urllib.request.urlopen(base + "/users", timeout=30).read().decode()
openids = re.findall(r'mono muted">([^<]+)<', page)
if len(openids) != n:
    sys.exit(f"the simulator lists {len(openids)} followers, not {n}")
for openid in openids:
    path = "/users/" + urllib.parse.quote(openid, safe="")
    post(path + "/follow")
    post("/inbox/" + urllib.parse.quote(openid, safe="") + "/send", content="hi")
print("\n".join(openids))
PY
}

# Notices sent, refused and parked so far, and notice jobs pending (waiting out the delay, due
# or being sent: a claimed job stays pending until it is done).
snapshot() {
    "${PSQL[@]}" -d "$DB" -tAF' ' -c "SELECT
        (SELECT count(*) FROM message_log WHERE outcome = 'sent'),
        (SELECT count(*) FROM message_log WHERE outcome NOT IN ('sent', 'waiting')),
        (SELECT count(*) FROM message_log WHERE outcome = 'waiting'),
        (SELECT count(*) FROM outbox WHERE kind = 'notice' AND status = 'pending')"
}

RESULTS="$WORK/results.txt"
for delay in $NOTICE_DELAYS; do
    DB="${DB_BASE}_${delay}"
    echo
    echo "== FISSION_NOTICE_DELAY_MS=$delay"
    bench_start_server FISSION_NOTICE_DELAY_MS="$delay" >/dev/null
    openids=$(make_inviters)
    "${PSQL[@]}" -d "$DB" -qc "INSERT INTO invite_codes (owner_openid, permanent, scene_id, quota_slot, ticket, url)
        SELECT o, true, n, n, 'ticket' || n, 'http://bench.invalid/' || n
        FROM unnest(string_to_array('$(echo "$openids" | paste -sd,)', ',')) WITH ORDINALITY AS x(o, n)"
    "${PSQL[@]}" -d "$DB" -qc "SELECT setval('permanent_scene_seq', $INVITERS)" >/dev/null
    read -r sent0 refused0 parked0 _ < <(snapshot)

    samples="$WORK/samples_$delay.txt"
    : >"$samples"
    WECHAT_TOKEN=fission RUST_BACKTRACE=0 "$LOADGEN" --bench --target "$BASE" --json \
        --warmup "$WARMUP" --duration "$DURATION" --connections "$CONNECTIONS" \
        --mode credited --scenes "1-$INVITERS" >"$WORK/load.txt" 2>&1 &
    load_pid=$!
    start=$(date +%s.%N)
    while kill -0 "$load_pid" 2>/dev/null; do
        echo "$(date +%s.%N) $(snapshot)" >>"$samples"
        sleep 0.5
    done
    wait "$load_pid"
    stopped=$(date +%s.%N)
    read -r sent_stop refused_stop parked_stop due_stop < <(snapshot)
    drained=""
    while ((delay < DRAIN_MAX * 1000)); do
        read -r sent refused parked due < <(snapshot)
        now=$(date +%s.%N)
        echo "$now $sent $refused $parked $due" >>"$samples"
        if ((due == 0)); then
            drained=$(python3 -c "print(f'{$now - $stopped:.1f}')")
            break
        fi
        if python3 -c "import sys; sys.exit(0 if $now - $stopped > $DRAIN_MAX else 1)"; then
            break
        fi
        sleep 0.5
    done
    grep -v '^{' "$WORK/load.txt" | sed 's/^/   /'
    pushes=$(grep '^{' "$WORK/load.txt" | python3 -c 'import json, sys; print(round(json.load(sys.stdin)["throughput_rps"]))')
    per_inviter=$("${PSQL[@]}" -d "$DB" -tAc "SELECT string_agg(n || ' message(s): ' || c || ' inviters', ', ' ORDER BY n)
        FROM (SELECT n, count(*) c FROM (SELECT count(*) FILTER (WHERE outcome = 'sent') n
              FROM message_log GROUP BY openid) x GROUP BY n) y")
    elapsed=$(python3 -c "print(f'{$stopped - $start:.1f}')")
    rate=$(python3 -c "print(round(($sent_stop - $sent0) / ($stopped - $start)))")
    echo "   pushes/s $pushes; during the load (${elapsed} s): $((sent_stop - sent0)) messages sent" \
        "($rate/s), $((refused_stop - refused0)) refused, $((parked_stop - parked0)) notices parked"
    if ((delay >= DRAIN_MAX * 1000)); then
        read -r sent refused parked due < <(snapshot)
        echo "   when the load stopped: $due_stop notice jobs pending, held by the delay"
    elif [[ -n "$drained" ]]; then
        echo "   when the load stopped: $due_stop notice jobs pending, none $drained s later"
    else
        echo "   when the load stopped: $due_stop notice jobs pending, $due still after $DRAIN_MAX s"
    fi
    # The pace while messages flowed: from the first message sent to the last.
    read -r flowing span < <("${PSQL[@]}" -d "$DB" -tAF' ' -c "SELECT count(*),
        round(extract(epoch FROM max(at) - min(at))::numeric, 2) FROM message_log
        WHERE outcome = 'sent' AND at >= to_timestamp($start)")
    pace="-"
    if [[ "$flowing" != 0 && -n "$span" ]]; then
        pace=$(python3 -c "print(round($flowing / $span) if $span else '-')")
    fi
    echo "   in all: $((sent - sent0)) messages sent ($flowing in ${span:-0} s from the first to the last:" \
        "$pace/s), $((refused - refused0)) refused; per inviter: $per_inviter"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$delay" "$pushes" "$rate" "$pace" "$due_stop" \
        "${drained:--}" "$((sent - sent0))" "$((refused - refused0))" >>"$RESULTS"
    bench_stop_server
    bench_drop_database
done

echo
echo "== summary ($INVITERS inviters, $CONNECTIONS connections, ${WARMUP}+${DURATION} s)"
printf '%-9s %9s %14s %14s %15s %11s %7s %8s\n' "delay ms" "pushes/s" "sent/s (load)" "sent/s (flow)" \
    "pending at stop" "drained in" "sent" "refused"
while IFS=$'\t' read -r delay pushes rate pace due drained sent refused; do
    printf '%-9s %9s %14s %14s %15s %11s %7s %8s\n' "$delay" "$pushes" "$rate" "$pace" "$due" "${drained} s" \
        "$sent" "$refused"
done <"$RESULTS"
