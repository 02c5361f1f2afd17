#!/usr/bin/env bash
# Two Fission binaries side by side at constant rates: which one answers a lone push faster.
#
#   bench/ab.sh OLD_BINARY NEW_BINARY
#   REPS=3 RATES="50 300" DURATION=10 bench/ab.sh /tmp/fission-before target/release/fission
#
# For each of REPS rounds, each binary in turn: `fission serve` on a fresh database (sandbox
# mode, 20 seeded codes, as bench/compare.sh), then the open loop of benches/callback_load.rs at
# each of RATES pushes/s (credited pushes, latency from each push's due time), then the server
# is stopped and its database dropped. Alternating spreads whatever else the machine does over
# both. Prints each run's p50/p90/p99 and, at the end, the medians per binary and rate.
#
# Environment: REPS (2)  RATES ("50 300")  DURATION (measured s, 10)  BENCH_LOADGEN (a
#   callback_load binary; otherwise built with `cargo build --release --bench callback_load`)
# Needs PostgreSQL (postgres@127.0.0.1:5432, trust auth), Redis (127.0.0.1:6379) and python3.
BENCH_NAME=ab
BENCH_PORT="${BENCH_PORT:-18380}"
source "$(dirname "$0")/lib.sh"

[[ $# -eq 2 ]] || { echo "usage: bench/ab.sh OLD_BINARY NEW_BINARY" >&2; exit 2; }
OLD="$(realpath "$1")"
NEW="$(realpath "$2")"
for b in "$OLD" "$NEW"; do
    [[ -x "$b" ]] || { echo "not an executable: $b" >&2; exit 2; }
done
REPS="${REPS:-2}"
RATES="${RATES:-50 300}"
DURATION="${DURATION:-10}"
DB_BASE="$DB"
RESULTS="$WORK/results.tsv"

LOADGEN=$(bench_loadgen)

bench_machine
echo "old: $OLD ($(stat -c %y "$OLD" | cut -d. -f1))"
echo "new: $NEW ($(stat -c %y "$NEW" | cut -d. -f1))"
for rep in $(seq 1 "$REPS"); do
    for which in old new; do
        BIN="$OLD"
        [[ "$which" == new ]] && BIN="$NEW"
        DB="${DB_BASE}_${which}_${rep}"
        bench_start_server >/dev/null
        bench_seed_codes 20
        for rate in $RATES; do
            line=$(WECHAT_TOKEN=fission RUST_BACKTRACE=0 "$LOADGEN" --bench --target "$BASE" \
                --rate "$rate" --duration "$DURATION" --mode credited --scenes 1-20 2>&1 \
                | grep 'latency ms:' || true)
            read -r p50 p90 p99 < <(echo "$line" | sed -E 's/.*p50 ([0-9.]+) +p90 ([0-9.]+) +p99 ([0-9.]+).*/\1 \2 \3/')
            echo "round $rep  $which  ${rate}/s  p50 ${p50:-?}  p90 ${p90:-?}  p99 ${p99:-?} ms"
            printf '%s\t%s\t%s\t%s\t%s\n' "$which" "$rate" "${p50:-nan}" "${p90:-nan}" "${p99:-nan}" >>"$RESULTS"
        done
        bench_stop_server
        bench_drop_database
    done
done

echo "== medians over $REPS rounds (ms)"
python3 - "$RESULTS" <<'PY'
import statistics, sys
rows = [l.split("\t") for l in open(sys.argv[1]).read().splitlines()]
for rate in sorted({r[1] for r in rows}, key=int):
    for which in ("old", "new"):
        got = [r for r in rows if r[0] == which and r[1] == rate]
        med = [statistics.median(float(r[i]) for r in got) for i in (2, 3, 4)]
        print(f"{rate:>5}/s  {which}  p50 {med[0]:.2f}  p90 {med[1]:.2f}  p99 {med[2]:.2f}")
PY
