#!/usr/bin/env bash
# Starts the Python reference app (bench/peer/app.py) under gunicorn on a fresh database.
#
#   bench/peer/run.sh            # venv if missing, fresh database + seeded codes, then gunicorn
#   bench/peer/run.sh venv       # only create / update the venv (bench/peer/.venv)
#   bench/peer/run.sh [gunicorn args]   # extra arguments go to gunicorn
#
# Environment:
#   PEER_PORT (18090)   PEER_DB (fission_peer)   PEER_CODES (20: scenes 1..N, owners oPeerInviterN)
#   PEER_WORKERS (4 sync workers)   WECHAT_TOKEN (fission)   WECHAT_ENCODING_AES_KEY (optional:
#   safe mode)   WECHAT_APPID (needed with the key)
#
# Needs python3 (with venv; installed with apt-get when missing) and PostgreSQL
# (postgres@127.0.0.1:5432, trust auth). The database PEER_DB is dropped and recreated: pick a
# name of its own. Gunicorn runs in the foreground (this script execs it), so its pid is the
# pid of this script; SIGTERM stops it. The database is left behind for inspection; the
# caller drops it (bench/compare.sh does).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="$HERE/.venv"
PORT="${PEER_PORT:-18090}"
DB="${PEER_DB:-fission_peer}"
CODES="${PEER_CODES:-20}"
WORKERS="${PEER_WORKERS:-4}"
PSQL=(env PGOPTIONS="-c client_min_messages=warning" psql -h 127.0.0.1 -p 5432 -U postgres -v ON_ERROR_STOP=1 -q)

ensure_venv() {
    # The copy of requirements.txt in the venv tells whether it is up to date.
    if [[ -x "$VENV/bin/gunicorn" ]] && cmp -s "$HERE/requirements.txt" "$VENV/requirements.txt"; then
        return
    fi
    echo "peer: setting up $VENV" >&2
    if [[ ! -x "$VENV/bin/python" ]]; then
        rm -rf "$VENV"
        if ! python3 -m venv "$VENV" >/dev/null 2>&1; then
            # Debian's python3 has no ensurepip without python3-venv.
            rm -rf "$VENV"
            echo "peer: python3 -m venv failed; installing python3-venv" >&2
            apt-get install -y -q python3-venv >&2 || { apt-get update -q >&2 && apt-get install -y -q python3-venv >&2; }
            python3 -m venv "$VENV"
        fi
    fi
    "$VENV/bin/pip" install -q --disable-pip-version-check -r "$HERE/requirements.txt" >&2
    cp "$HERE/requirements.txt" "$VENV/requirements.txt"
}

ensure_venv
if [[ "${1:-}" == venv ]]; then
    exit 0
fi

if [[ -n "${WECHAT_ENCODING_AES_KEY:-}" && -z "${WECHAT_APPID:-}" ]]; then
    echo "peer: WECHAT_ENCODING_AES_KEY needs WECHAT_APPID" >&2
    exit 1
fi

"${PSQL[@]}" -d postgres -c "DROP DATABASE IF EXISTS \"$DB\" WITH (FORCE)"
"${PSQL[@]}" -d postgres -c "CREATE DATABASE \"$DB\""
"${PSQL[@]}" -d "$DB" -f "$HERE/schema.sql"
"${PSQL[@]}" -d "$DB" -c "INSERT INTO codes (scene, owner)
    SELECT g::text, 'oPeerInviter' || g FROM generate_series(1, $CODES) g"
echo "peer: database $DB with $CODES codes; gunicorn on 127.0.0.1:$PORT, $WORKERS sync workers" >&2

export DATABASE_URL="postgresql://postgres@127.0.0.1:5432/$DB"
export WECHAT_TOKEN="${WECHAT_TOKEN:-fission}"
exec "$VENV/bin/gunicorn" \
    --workers "$WORKERS" \
    --worker-class sync \
    --bind "127.0.0.1:$PORT" \
    --chdir "$HERE" \
    --no-control-socket \
    "$@" \
    app:app
