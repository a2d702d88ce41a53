#!/usr/bin/env bash
# CI step: start `postroom serve` on a fresh data dir, then run schemathesis against the server's own
# /api/v1/openapi.json with a bounded number of examples per operation, every check on (server
# errors, undeclared statuses, schema and media-type conformance, invalid input accepted, valid
# input rejected, undeclared methods, Allow headers, ignored auth, ...) and the stateful phase
# following the document's `links` (POST /queues → GET/PATCH/DELETE /queues/{id}, ...). Any failure
# or warning fails the step. Uses $POSTROOM_DATABASE_URL when set (PostgreSQL), else a temporary SQLite file.
#
#   bash .ci/schemathesis.sh                  # from the repository root, after `make install-test`
#   MAX_EXAMPLES=50 bash .ci/schemathesis.sh  # more examples per operation
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=$(cd "${BIN:-.venv/bin}" && pwd)
MAX_EXAMPLES=${MAX_EXAMPLES:-15}
SEED=${SEED:-20261128}
CHECKS=all
WORK=$(mktemp -d)
PORT=$("$BIN/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
BASE="http://127.0.0.1:$PORT"
PASSWORD="schemathesis-admin-password"

if [ -n "${POSTROOM_DATABASE_URL:-}" ]; then
  "$BIN/python" -c '
import asyncio, os, sys
sys.path.insert(0, ".")
from tests.conftest import reset_postgres
asyncio.run(reset_postgres(os.environ["POSTROOM_DATABASE_URL"]))'
fi

POSTROOM_STORAGE_DATA_DIR="$WORK/data" POSTROOM_HTTP_PORT="$PORT" POSTROOM_SMTP_PORT=0 \
POSTROOM_BOOTSTRAP_ADMIN_PASSWORD="$PASSWORD" POSTROOM_LOG_LEVEL=WARNING \
POSTROOM_LIMITS_REQUESTS_PER_SECOND=100000 POSTROOM_LIMITS_BURST=100000 \
POSTROOM_LIMITS_LOGIN_ATTEMPTS_PER_MINUTE=100000 \
  "$BIN/postroom" serve >"$WORK/serve.log" 2>&1 &
SERVER=$!
cleanup() {
  kill -TERM "$SERVER" 2>/dev/null || true
  wait "$SERVER" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
# Warnings fail the run as failures do; the few rules a schema cannot state are listed there.
CONFIG="$PWD/.ci/schemathesis.toml"

for _ in $(seq 1 100); do
  "$BIN/python" -c "import urllib.request; urllib.request.urlopen('$BASE/api/v1/health', timeout=1)" 2>/dev/null && break
  sleep 0.2
done

TOKEN=$("$BIN/python" - "$BASE" "$PASSWORD" <<'EOF'
import json, sys, urllib.request
base, password = sys.argv[1], sys.argv[2]
body = json.dumps({"username": "admin", "password": password}).encode()
request = urllib.request.Request(base + "/api/v1/auth/login", body, {"Content-Type": "application/json"})
print(json.load(urllib.request.urlopen(request))["key"])
EOF
)

# Data generated input cannot make: a document in the first queue, an e-mail in its inbox.
"$BIN/python" .ci/schemathesis_seed.py "$BASE" "$TOKEN"

run() {
  # From the scratch dir: schemathesis keeps its crash cache in ./.schemathesis
  (cd "$WORK" && "$BIN/schemathesis" --config-file "$CONFIG" run "$BASE/api/v1/openapi.json" \
    --checks "$CHECKS" --max-examples "$MAX_EXAMPLES" --seed "$SEED" --workers 1 \
    --phases "${PHASES:-examples,coverage,fuzzing,stateful}" --request-timeout 30 --no-shrink \
    --suppress-health-check all \
    -H "Authorization: Bearer $TOKEN" "$@")
}

status=0
# Everything except what would end the session (logout, password change, user changes) ...
run --exclude-path /api/v1/auth/logout --exclude-path /api/v1/auth/password/change \
    --exclude-path-regex '^/api/v1/users/\{id\}$' || status=$?
# ... which run last, when losing the token no longer matters.
run --include-path-regex '^/api/v1/users/\{id\}$' || status=$?
# No links among these (nothing to follow): no stateful phase. Logout last: it ends the token.
PHASES=examples,coverage,fuzzing run --include-path /api/v1/auth/password/change || status=$?
PHASES=examples,coverage,fuzzing run --include-path /api/v1/auth/logout || status=$?

if [ "$status" -ne 0 ]; then
  echo "== server errors (tracebacks of the 5xx above)"
  grep -A 40 "unhandled error" "$WORK/serve.log" | tail -n 300 || true
fi
exit "$status"
