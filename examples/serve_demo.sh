#!/usr/bin/env bash
# The REST server at work: builds `agent-backlog`, starts `agent-backlog serve` on a
# free loopback port with a temporary database, waits until it answers, sends one
# request per route with curl (printing method, path, status and body), then stops
# the server with SIGTERM and shows its request log.
#
# Run: bash examples/serve_demo.sh   (also part of `make demo`; needs curl)
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO=${CARGO:-cargo}
command -v curl >/dev/null || {
    echo "serve_demo.sh needs curl (apt-get install curl)" >&2
    exit 1
}
$CARGO build --quiet -p agent-backlog-cli
bin=${CARGO_TARGET_DIR:-target}/debug/agent-backlog

tmp=$(mktemp -d)
pid=
cleanup() {
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT

"$bin" --db "$tmp/demo.db" serve --host 127.0.0.1 --port 0 2>"$tmp/server.log" &
pid=$!

# Wait for the startup line that names the port (at most 30 s), then for an answer.
base=
for _ in $(seq 300); do
    base=$(grep -o 'http://[^ ]*' "$tmp/server.log" | head -n 1 || true)
    [ -n "$base" ] && break
    if ! kill -0 "$pid" 2>/dev/null; then
        cat "$tmp/server.log" >&2
        exit 1
    fi
    sleep 0.1
done
[ -n "$base" ] || { echo "the server did not start" >&2; exit 1; }
curl --silent --fail --retry 20 --retry-connrefused --retry-delay 1 \
    --output /dev/null "$base/api/backlogs"
echo "# agent-backlog serve on $base (database $tmp/demo.db)"
echo

# call METHOD PATH [JSON-BODY]: one request, then its status and body.
call() {
    local method=$1 path=$2 body=${3-} out
    echo "$method $path"
    if [ -n "$body" ]; then
        echo "  request: $body"
        out=$(curl --silent --show-error -X "$method" -H 'Content-Type: application/json' \
            --data-binary "$body" --write-out '\n%{http_code}' "$base$path")
    else
        out=$(curl --silent --show-error -X "$method" --write-out '\n%{http_code}' "$base$path")
    fi
    echo "  status:  ${out##*$'\n'}"
    echo "  body:    ${out%$'\n'*}"
    echo
}

call PUT /api/backlogs/growth-bot/prefix '{"prefix": "GRW"}'
call POST /api/backlogs/marketing-lead \
    '{"title": "Write 3 LinkedIn posts", "description": "Focus on ROI...", "priority": 3}'
call POST /api/backlogs/marketing-lead/batch \
    '[{"title": "Audit competitor pricing pages", "description": "Compare top 5 competitors..."}, {"title": "Plan the webinar", "priority": 7}]'
call POST /api/backlogs/growth-bot '{"title": "Draft the growth plan", "priority": 2}'
call GET '/api/backlogs/marketing-lead?status=queued'
call GET /api/backlogs/marketing-lead/MKT-002
call POST /api/backlogs/marketing-lead/claim
call PATCH /api/backlogs/marketing-lead/MKT-001 \
    '{"status": "complete", "result": "Generated 3 LinkedIn posts..."}'
call DELETE /api/backlogs/marketing-lead/MKT-003
call GET /api/backlogs/marketing-lead/summary
call GET '/api/backlogs?status=queued'
echo "# and some refusals"
echo
call POST /api/backlogs/nobody/claim
call GET /api/backlogs/marketing-lead/MKT-009
call PATCH /api/backlogs/marketing-lead/MKT-002 '{"status": "complete"}'
call GET '/api/backlogs?priority=abc'

kill -TERM "$pid"
wait "$pid"
pid=
echo "# the server's log (stderr)"
cat "$tmp/server.log"
