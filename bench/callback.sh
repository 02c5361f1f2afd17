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
source "$(dirname "$0")/lib.sh"

bench_machine
bench_build
cargo bench --bench callback_load --no-run
bench_start_server

# Credited mode needs codes to credit: BENCH_SEED_CODES=N gives followers 1..N a permanent
# code with scene 1..N (rows written directly; the load measures the callback, not issuance).
if [[ -n "${BENCH_SEED_CODES:-}" ]]; then
    "${PSQL[@]}" -d "$DB" -qc "INSERT INTO invite_codes (owner_openid, permanent, scene_id, quota_slot, ticket, url)
        SELECT 'oBenchInviter' || g, true, g, g, 'ticket' || g, 'http://bench.invalid/' || g
        FROM generate_series(1, $BENCH_SEED_CODES) g"
    "${PSQL[@]}" -d "$DB" -qc "SELECT setval('permanent_scene_seq', $BENCH_SEED_CODES)" >/dev/null
    echo "seeded $BENCH_SEED_CODES invite codes"
fi

echo "== load"
WECHAT_TOKEN=fission cargo bench --bench callback_load -- --target "$BASE" "$@"

echo "== server after the run"
bench_server_memory
echo "events rows: $("${PSQL[@]}" -d "$DB" -tAc 'select count(*) from events')"
echo "referrals credited: $("${PSQL[@]}" -d "$DB" -tAc 'select count(*) from referrals')"
