#!/usr/bin/env bash
# What a burst of wrong dashboard passwords costs the server: N concurrent login attempts (one
# address, one session, the right CSRF token, wrong passwords), then the answers by status and
# the server's resident memory before, at its peak (VmHWM) and after.
#
#   bench/login_rss.sh [--attempts 250]
#   BENCH_BIN=/path/to/fission bench/login_rss.sh   # measure another build (e.g. an older one)
BENCH_NAME=login
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ATTEMPTS=250
while [[ $# -gt 0 ]]; do
    case "$1" in
        --attempts) ATTEMPTS="$2"; shift 2 ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
done

bench_machine
[[ -n "${BENCH_BIN:-}" ]] || bench_build
echo "binary: $BIN"
bench_start_server FISSION_ADMIN_PASSWORD="the-right-password"

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$SERVER_PID/status"; }
JAR="$WORK/cookies"
csrf=$(curl -s -c "$JAR" "$BASE/admin/login" | grep -o 'name="csrf" value="[^"]*"' | sed 's/.*value="\([^"]*\)"/\1/')
[[ -n "$csrf" ]] || { echo "no CSRF token on the login form" >&2; exit 1; }
before=$(rss_kb)
echo "== $ATTEMPTS concurrent wrong passwords"
started=$(date +%s%N)
seq 1 "$ATTEMPTS" | xargs -P "$ATTEMPTS" -I{} \
    curl -s -o /dev/null -w '%{http_code}\n' -b "$JAR" \
        --data-urlencode "csrf=$csrf" --data-urlencode "username=admin" \
        --data-urlencode "password=guess-{}" "$BASE/admin/login" >"$WORK/statuses"
elapsed=$(awk -v s="$started" -v e="$(date +%s%N)" 'BEGIN {printf "%.1f", (e - s) / 1e9}')
after=$(rss_kb)
peak=$(awk '/^VmHWM:/ {print $2}' "/proc/$SERVER_PID/status")
echo "answers (count status):"
sort "$WORK/statuses" | uniq -c
checks=$(curl -s "$BASE/metrics" | awk '/^fission_password_checks_total / {print $2}')
echo "passwords verified (fission_password_checks_total): ${checks:-not reported by this build}"
printf 'RSS before: %d MB, peak: %d MB, after: %d MB (growth to peak: %d MB); %s s for the burst\n' \
    $((before / 1024)) $((peak / 1024)) $((after / 1024)) $(((peak - before) / 1024)) "$elapsed"
