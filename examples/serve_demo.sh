#!/usr/bin/env bash
# The REST server at work: builds `agent-backlog`, starts `agent-backlog serve` on a
# free loopback port with a temporary database, waits until it answers, sends one
# request per route with curl (printing method, path, status and body), then stops
# the server with SIGTERM and shows its request log. Without curl, the requests are
# sent by Python's urllib, so the demo needs nothing beyond the quick start's tools.
#
# Run: bash examples/serve_demo.sh   (part 2 of `make demo`). AGENT_BACKLOG_BIN names
# the binary to run; without it the script builds one (release).
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO=${CARGO:-cargo}

# http METHOD URL [JSON-BODY]: prints the response body, a newline, and the status.
if command -v curl >/dev/null; then
    http() {
        if [ -n "${3-}" ]; then
            curl --silent --show-error -X "$1" -H 'Content-Type: application/json' \
                --data-binary "$3" --write-out '\n%{http_code}' "$2"
        else
            curl --silent --show-error -X "$1" --write-out '\n%{http_code}' "$2"
        fi
    }
else
    http() {
        python3 - "$@" <<'PY'
import sys, urllib.error, urllib.request
method, url, body = sys.argv[1], sys.argv[2], (sys.argv[3] if len(sys.argv) > 3 else "")
request = urllib.request.Request(url, method=method, data=body.encode() or None,
                                 headers={"Content-Type": "application/json"} if body else {})
try:
    with urllib.request.urlopen(request) as response:
        status, text = response.status, response.read().decode()
except urllib.error.HTTPError as error:
    status, text = error.code, error.read().decode()
print(text + "\n" + str(status), end="")
PY
    }
fi
bin=${AGENT_BACKLOG_BIN:-}
if [ -z "$bin" ]; then
    $CARGO build --release -p agent-backlog-cli
    bin=${CARGO_TARGET_DIR:-target}/release/agent-backlog
fi

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
for _ in $(seq 30); do
    http GET "$base/api/backlogs" >/dev/null 2>&1 && break
    sleep 1
done
echo "# agent-backlog serve on $base (database $tmp/demo.db)"
echo

# call METHOD PATH [JSON-BODY]: one request, then its status and body.
call() {
    local method=$1 path=$2 body=${3-} out
    echo "$method $path"
    if [ -n "$body" ]; then
        echo "  request: $body"
    fi
    out=$(http "$method" "$base$path" "$body")
    local text=${out%$'\n'*}
    echo "  status:  ${out##*$'\n'}"
    echo "  body:    ${text%$'\n'}"
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
