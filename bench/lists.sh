#!/usr/bin/env bash
# bench/lists.sh — the cost of a page of an entity list (GET /api/v1/{E}).
#
# Starts one crmblob on DB (a SQLite file path, or a PostgreSQL conninfo
# "host=... dbname=... options=-csearch_path=..."), makes BENCH_ROWS persons
# (one in ten with a picture), then runs wrk (keep-alive, BENCH_CONNS
# connections) on a page of 50 in a few shapes and prints req/s and the
# server's CPU time per request (utime + stime of the crmblob process from
# /proc, before and after each run).
#
# Usage: bash bench/lists.sh [DB]      (default: a SQLite file in a temp dir)
#   CRMBLOB_BIN (build/crmblob)  BENCH_SECONDS (5)  BENCH_CONNS (8)  BENCH_ROWS (2000)
#   BENCH_SERVER_CPU / BENCH_LOAD_CPU (1 / 0): taskset cores of server and wrk
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${CRMBLOB_BIN:-build/crmblob}
SECS=${BENCH_SECONDS:-5}
CONNS=${BENCH_CONNS:-8}
ROWS=${BENCH_ROWS:-2000}
SCPU=${BENCH_SERVER_CPU:-1}
LCPU=${BENCH_LOAD_CPU:-0}
tmp=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
DB=${1:-$tmp/crmblob.db}
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$BIN" init --db "$DB" >/dev/null 2>&1 || true
printf 'bench-pw-1\n' | "$BIN" user add bench --role admin --password-stdin --db "$DB" >/dev/null
taskset -c "$SCPU" "$BIN" serve --listen "127.0.0.1:$PORT" --db "$DB" --spool-dir "$tmp" \
    --auth-address-limit 0 --auth-account-limit 0 >"$tmp/server.log" 2>&1 &
pid=$!
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$PORT/health" >/dev/null && break; sleep 0.1; done
AUTH="Authorization: Basic $(printf 'bench:bench-pw-1' | base64)"
python3 - "$PORT" "$ROWS" "$AUTH" <<'PY'
import http.client, json, sys
port, rows, auth = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3].split(": ", 1)[1]
png = open("tests/data/small.png", "rb").read()
c = http.client.HTTPConnection("127.0.0.1", port)
for i in range(rows):
    body = json.dumps({"Firstname": f"F{i:05d}", "Lastname": f"L{(i * 7919) % rows:05d}"})
    c.request("POST", "/api/v1/Person", body, {"Authorization": auth, "Content-Type": "application/json"})
    r = c.getresponse(); pid = json.loads(r.read())["PersonId"]
    if i % 10 == 0:
        c.request("PUT", f"/api/v1/Person/{pid}/Image", png, {"Authorization": auth, "Content-Type": "image/png"})
        c.getresponse().read()
PY
cpu() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
hz=$(getconf CLK_TCK)
printf '%-62s %10s %14s\n' "page of 50" "req/s" "CPU us/req"
for q in '$top=50' '$top=50&$skip=1000' '$top=50&$orderby=Lastname' \
         '$top=50&$orderby=Lastname%20desc&$skip=500' "\$top=50&\$filter=name%20begins%20'L001'" \
         '$top=50&$select=PersonId,Firstname,ImageBlobId,ImageVersion'; do
    url="http://127.0.0.1:$PORT/api/v1/Person?$q"
    curl -fs -H "$AUTH" "$url" >/dev/null
    c0=$(cpu)
    out=$(taskset -c "$LCPU" wrk -t1 -c"$CONNS" -d"${SECS}s" -H "$AUTH" "$url")
    c1=$(cpu)
    reqs=$(echo "$out" | awk '/requests in/ {print $1}')
    rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
    non2xx=$(echo "$out" | awk '/Non-2xx/ {print $4}')
    [ -z "$non2xx" ] || { echo "non-2xx answers: $non2xx" >&2; exit 1; }
    us=$(awk -v d=$((c1 - c0)) -v n="$reqs" -v hz="$hz" 'BEGIN {printf "%.1f", d / hz * 1e6 / n}')
    printf '%-62s %10s %14s\n' "$q" "$rps" "$us"
done
