#!/usr/bin/env bash
# bench/run.sh — is crmblob the fastest thing in its path? (issue #7)
#
# Measures, with wrk over loopback (keep-alive, BENCH_CONNS connections, one
# wrk thread pinned to CPU BENCH_LOAD_CPU, every server pinned to CPU
# BENCH_SERVER_CPU with taskset), each row of the issue against its reference
# in the same run:
#   GET a person's 25 KB JPEG, Basic auth      vs nginx static file (sendfile)
#   GET ImageInfo (JSON)                       vs nginx static JSON file
#   PUT ImageInfo on a --durable server        vs nginx static JSON file
#   PUT a 200 KB JPEG on a --durable server    vs nginx WebDAV PUT of the bytes
#   PUT ImageInfo (default server)             vs json-server updating a record
# and: idle RSS, peak RSS (VmHWM) over BENCH_UPLOADS concurrent 10 MB uploads,
# the cost of an authenticated request over an unauthenticated one, and the
# --durable / default PUT ImageInfo throughput. Writes BENCHMARKS.md (BENCH_OUT),
# bench/results.dat and bench/chart.png (gnuplot), prints the tables.
#
# Usage: bash bench/run.sh        (make bench installs what it needs first:
#                                  scripts/bench-deps.sh)
#   CRMBLOB_BIN     the binary (default build/crmblob, built with make if needed)
#   BENCH_SECONDS   seconds per wrk run (10)      BENCH_CONNS   connections (64)
#   BENCH_WARMUP    warm-up seconds per run (2)   BENCH_UPLOADS concurrent uploads (200)
#   BENCH_OUT       the report (BENCHMARKS.md at the repository root); the chart
#                   and its data go to bench/ (or next to BENCH_OUT when given)
#   BENCH_SERVER_CPU / BENCH_LOAD_CPU   the cores (1 / 0)
#   BENCH_SERVE_ARGS  more `crmblob serve` options for every crmblob server (e.g. --threads 1)
#   BENCH_TMPDIR    where the temporary directory goes (TMPDIR, /tmp): keep it on
#                   a disk, fsync on tmpfs is free
#   SMOKE=1         a quick run that only checks the benchmark works (1 s runs, 4
#                   connections, 8 uploads of 1 MB, no warm-up, json-server row
#                   skipped if it is not installed, report in the temp dir)
#   KEEP=1          keep the temporary directory
#   BENCH_ROWS      which groups run, comma-separated (default: all of them):
#                     issue7   the rows above (nginx, json-server, RSS, auth cost)
#                     sqlite1  crmblob's four rows on one SQLite server, alone
#                              (only when issue7 is not selected: issue7 measures them)
#                     sqlite2  the four rows on two servers on one SQLite file behind haproxy
#                     pg       the four rows on one server on PostgreSQL
#                     pg2      the four rows on two servers on PostgreSQL behind haproxy
#                     tls      GET Image 25 KB over TLS (--tls-cert) against nginx over
#                              TLS with the same self-signed certificate (bench/nginx-tls.conf.in)
#                     import   `crmblob import` of BENCH_IMPORT_N (10000) small JPEGs against
#                              a curl loop uploading them (PUT Image), BENCH_IMPORT_THREADS (2)
#                              at a time each (import --threads N; xargs -P N, one curl a file)
#                   e.g. BENCH_ROWS=sqlite1,sqlite2,pg,pg2 for issue 18's rows alone
#   BENCH_PG_CPU / BENCH_PROXY_CPU  the cores of PostgreSQL and haproxy (BENCH_SERVER_CPU)
#
# Issue 18 (PostgreSQL as the shared store): GET Image, GET ImageInfo, PUT
# ImageInfo and PUT 200 KB JPEG on one crmblob on SQLite (the issue-7 rows
# above), two crmblob on one SQLite file behind haproxy (dist/haproxy/crmblob.cfg,
# the configuration of the scale-out tests), one crmblob on PostgreSQL and two
# behind haproxy. PostgreSQL is a throwaway cluster of scripts/pg-cluster.sh
# WITHOUT --fast (fsync on: a commit is durable, as on the --durable SQLite
# servers) in the temporary directory. The CPU time of crmblob, PostgreSQL
# (the postmaster and its backends) and haproxy is measured apart. Pinning: the
# load (wrk) alone on BENCH_LOAD_CPU; everything that answers (the crmblob
# servers, haproxy, PostgreSQL) on BENCH_SERVER_CPU. On a 2-core machine this
# keeps wrk's core free of the servers, as in the issue-7 rows, and gives
# every setup the same one core: req/s then compares what a setup costs, and
# two servers on one core show the proxy's and the sharing's cost, not the
# scale-out gain (which needs a core per server). The targets use CPU per
# request, which does not depend on that choice. A setup whose server refuses
# to start (e.g. a crmblob that cannot serve PostgreSQL) is reported as "not
# run: <its first error line>", not as a failure.
# Exits non-zero when something failed to run (a server did not start, any
# non-2xx answer or socket error in a wrk run, a failed upload), not when a
# target is missed: misses are reported in the table.
# Needs: wrk, nginx (with the DAV module), curl, vips, gnuplot, taskset,
# /usr/bin/time, python3; node + bench/node_modules/json-server for the json-server row.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BENCH="$REPO/bench"
SMOKE="${SMOKE:-0}"
die() { echo "run.sh: $*" >&2; exit 1; }
say() { echo "[bench $(date +%H:%M:%S)] $*"; }

if [ "$SMOKE" = 1 ]; then
    DURATION="${BENCH_SECONDS:-1}" CONNS="${BENCH_CONNS:-4}" WARMUP="${BENCH_WARMUP:-0}"
    UPLOADS="${BENCH_UPLOADS:-8}" UP_W=1400 UP_H=1000 UP_SIGMA=12 UP_Q=92 UP_MB=1
else
    DURATION="${BENCH_SECONDS:-10}" CONNS="${BENCH_CONNS:-64}" WARMUP="${BENCH_WARMUP:-2}"
    UPLOADS="${BENCH_UPLOADS:-200}" UP_W=6000 UP_H=4000 UP_SIGMA=7 UP_Q=90 UP_MB=10
fi
ENTITIES="${BENCH_ENTITIES:-$CONNS}"
SERVER_CPU="${BENCH_SERVER_CPU:-1}"
LOAD_CPU="${BENCH_LOAD_CPU:-0}"
WRK_TIMEOUT=10s
SERVE_ARGS="${BENCH_SERVE_ARGS:-}"   # more `crmblob serve` options for every crmblob server
USER_NAME=bench PASS=bench-pw-1
CORS_ORIGIN=http://bench.example
SMALL_JPEG="$REPO/tests/data/images/photo_320x240_prog.jpg"   # 25 034 bytes
MID_JPEG="$REPO/tests/data/medium.jpg"                         # 199 824 bytes

for t in curl wrk nginx vips python3 taskset gnuplot; do
    command -v "$t" >/dev/null || die "$t is missing (bash scripts/bench-deps.sh installs it)"
done
[ -x /usr/bin/time ] || die "/usr/bin/time is missing (apt-get install time)"
for f in "$SMALL_JPEG" "$MID_JPEG"; do [ -s "$f" ] || die "missing test picture $f"; done
ncpu="$(nproc)"
if [ "$ncpu" -lt 2 ]; then
    echo "run.sh: only $ncpu CPU: the load tool and the server share it" >&2
    SERVER_CPU=0 LOAD_CPU=0
fi

if [ -n "${CRMBLOB_BIN:-}" ]; then
    BIN="$CRMBLOB_BIN"
else
    BIN="$REPO/build/crmblob"
    make --no-print-directory -C "$REPO" build/crmblob >/dev/null || die "make build/crmblob failed"
fi
[ -x "$BIN" ] || die "no crmblob binary at $BIN (run make)"
BIN="$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")"

JSON_SERVER="$BENCH/node_modules/json-server/lib/cli/bin.js"
JS_SKIP=""
ROWS_SEL=",${BENCH_ROWS:-issue7,sqlite2,pg,pg2,tls,import},"
sel() { [[ "$ROWS_SEL" == *",$1,"* ]]; }   # sel GROUP: is the group of rows selected?
for g in ${ROWS_SEL//,/ }; do
    case "$g" in issue7 | sqlite1 | sqlite2 | pg | pg2 | tls | import) ;; *) die "BENCH_ROWS: unknown group $g" ;; esac
done
if ! command -v node >/dev/null || [ ! -f "$JSON_SERVER" ]; then
    [ "$SMOKE" = 1 ] || ! sel issue7 || die "json-server is not installed (bash scripts/bench-deps.sh)"
    JS_SKIP="json-server not installed"
fi

T="$(mktemp -d "${BENCH_TMPDIR:-${TMPDIR:-/tmp}}/crmblob-bench.XXXXXX")"
if [ "$SMOKE" = 1 ]; then
    OUT="${BENCH_OUT:-$T/BENCHMARKS.md}"
    DATA_DIR="$(dirname "$OUT")"
elif [ -n "${BENCH_OUT:-}" ]; then
    OUT="$BENCH_OUT"
    DATA_DIR="$(dirname "$OUT")"
else
    OUT="$REPO/BENCHMARKS.md"
    DATA_DIR="$BENCH"
fi
DAT="$DATA_DIR/results.dat"
CHART="$DATA_DIR/chart.png"

PROCS=()   # pids this script started (servers)
stop_pid() {   # stop_pid PID: TERM, up to 10 s, then KILL; then it is forgotten
    local pid="$1" keep=() p
    for p in "${PROCS[@]}"; do [ "$p" = "$pid" ] || keep+=("$p"); done
    PROCS=("${keep[@]}")
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}
cleanup() {
    local rc=$?
    local p
    for p in "${PROCS[@]}"; do stop_pid "$p"; done
    wait 2>/dev/null || true
    [ -z "${PG_DIR:-}" ] || bash "$REPO/scripts/pg-cluster.sh" stop "$PG_DIR" || true
    if [ "$rc" -ne 0 ]; then
        for f in "$T"/*.log "$T"/nginx/error.log; do
            [ -s "$f" ] || continue
            echo "--- $f (tail)" >&2; tail -n 15 "$f" >&2 || true
        done
    fi
    if [ "${KEEP:-0}" = 1 ]; then echo "kept $T" >&2; else rm -rf "$T"; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

: >"$T/results.txt"; : >"$T/extras.txt"; : >"$T/machine.txt"; : >"$T/commands.txt"; : >"$T/failures.txt"; : >"$T/parts.txt"
extra() { echo "$1=$2" >>"$T/extras.txt"; }
fail() { echo "$*" >>"$T/failures.txt"; echo "run.sh: ERROR: $*" >&2; }
cmdlog() { local l="$*"; printf '%s\n' "${l//"$REPO"\//}" >>"$T/commands.txt"; }   # paths relative to the repository
q() { local out="" a; for a in "$@"; do out+="$(printf '%q' "$a") "; done; echo "${out% }"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_http() {   # wait_http URL PID
    for _ in $(seq 150); do
        [ "$(curl -sk -o /dev/null -w '%{http_code}' "$1" || true)" != 000 ] && return 0
        kill -0 "$2" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}
CLK_TCK="$(getconf CLK_TCK)"
# proc_ticks PID...: utime+stime of these processes and their live children,
# plus what their children that ended used (cutime+cstime of PID: a
# PostgreSQL backend that ends is counted by its postmaster once reaped)
proc_ticks() {
    local total=0 p c stat f
    for p in "$@"; do
        for c in "$p" $(pgrep -P "$p" || true); do
            stat="$(cat "/proc/$c/stat" 2>/dev/null)" || continue
            read -r -a f <<<"${stat##*) }"
            total=$((total + f[11] + f[12]))
            [ "$c" != "$p" ] || total=$((total + f[13] + f[14]))
        done
    done
    echo "$total"
}
sys_busy() { awk '$1 == "cpu" {print $2 + $3 + $4 + $7 + $8 + $9; exit}' /proc/stat; }   # all CPUs, ticks
status_kb() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; }
now() { date +%s.%N; }

# ------------------------------------------------------------------ machine
{
    echo "date=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "cpu=$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1)"
    echo "cores=$ncpu online ($(lscpu 2>/dev/null | sed -n 's/^Thread(s) per core: *//p' | head -1) thread(s) per core); server on CPU $SERVER_CPU, load on CPU $LOAD_CPU"
    echo "ram=$(awk '/^MemTotal:/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)"
    echo "kernel=$(uname -srm)"
    echo "os=$(. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME")"
    echo "virt=$(systemd-detect-virt 2>/dev/null || lscpu 2>/dev/null | sed -n 's/^Hypervisor vendor: *//p' | head -1 || echo '?')"
    echo "tmp_dir=$T"
    echo "tmp_fs=$(findmnt -n -o FSTYPE -T "$T" 2>/dev/null || stat -f -c %T "$T") on $(df --output=source "$T" | tail -1)"
    echo "nginx=$(nginx -v 2>&1 | sed 's/^nginx version: //')"
    echo "wrk=$(wrk -v 2>&1 | head -1 | awk '{print $2}')"
    echo "node=$(node --version 2>/dev/null || echo 'not installed')"
    echo "json_server=$( [ -z "$JS_SKIP" ] && node "$JSON_SERVER" --version 2>/dev/null || echo 'not installed')"
    echo "libmicrohttpd=$(pkg-config --modversion libmicrohttpd 2>/dev/null || echo '?')"
    echo "sqlite=$(pkg-config --modversion sqlite3 2>/dev/null || echo '?')"
    echo "libvips=$(vips --version 2>/dev/null | head -1)"
    echo "crmblob_commit=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown) (the binary may hold uncommitted changes)"
    echo "crmblob_binary=$BIN, modified $(date -u -r "$BIN" +%Y-%m-%dT%H:%M:%SZ)"
    echo "crmblob_sha256=$(sha256sum "$BIN" | cut -c1-16)"
} >>"$T/machine.txt"
extra smoke "$SMOKE"; extra conns "$CONNS"; extra duration "$DURATION"; extra warmup "$WARMUP"
extra entities "$ENTITIES"; extra serve_args "$SERVE_ARGS"; extra server_cpu "$SERVER_CPU"; extra load_cpu "$LOAD_CPU"
extra small_jpeg "${SMALL_JPEG#"$REPO"/}"; extra small_jpeg_bytes "$(stat -c %s "$SMALL_JPEG")"
extra mid_jpeg "${MID_JPEG#"$REPO"/}"; extra mid_jpeg_bytes "$(stat -c %s "$MID_JPEG")"
cmdlog "# from the repository root; ports and temporary paths differ from run to run. Every wrk run"
cmdlog "# below was preceded by the same command with -d${WARMUP}s as a warm-up (none when 0)."
say "crmblob $BIN; $DURATION s per run, $CONNS connections, server on CPU $SERVER_CPU, wrk on CPU $LOAD_CPU; temp dir $T"

# ------------------------------------------------------------------ wrk runs
# measure NAME "PIDS" URL [wrk args...]: one wrk run (after a warm-up); the
# variables in the array WRK_ENV are passed to wrk's Lua scripts.
WRK_ENV=()
# PARTS: "label=PID..." entries; when set, measure also writes each part's CPU
# seconds to parts.txt (name|label|seconds), e.g. crmblob, postgres, haproxy
PARTS=()
measure() {
    local name="$1" pids="$2" url="$3"; shift 3
    local env=(env BENCH_LUA_DIR="$BENCH" "${WRK_ENV[@]}")
    local base=(taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNS" --timeout "$WRK_TIMEOUT" --latency)
    if [ "$WARMUP" != 0 ]; then
        "${env[@]}" "${base[@]}" -d"${WARMUP}s" "$@" "$url" >"$T/wrk_$name.warmup.txt" 2>&1 \
            || { fail "$name: wrk warm-up failed: $(tail -n 3 "$T/wrk_$name.warmup.txt" | tr '\n' ' ')"; return 0; }
    fi
    local t0 c0 t1 c1 s0 s1 part p0=() p1=() i
    # shellcheck disable=SC2086
    for part in "${PARTS[@]}"; do p0+=("$(proc_ticks ${part#*=})"); done
    # shellcheck disable=SC2086
    c0="$(proc_ticks $pids)"
    s0="$(sys_busy)"; t0="$(now)"
    if ! "${env[@]}" /usr/bin/time -f 'WRKTIME %U %S' -o "$T/wrk_$name.time" "${base[@]}" -d"${DURATION}s" "$@" "$url" \
            >"$T/wrk_$name.txt" 2>&1; then
        fail "$name: wrk failed: $(tail -n 3 "$T/wrk_$name.txt" | tr '\n' ' ')"
        return 0
    fi
    t1="$(now)"; s1="$(sys_busy)"
    # shellcheck disable=SC2086
    c1="$(proc_ticks $pids)"
    # shellcheck disable=SC2086
    for part in "${PARTS[@]}"; do p1+=("$(proc_ticks ${part#*=})"); done
    for i in "${!PARTS[@]}"; do
        awk -v n="$name" -v l="${PARTS[$i]%%=*}" -v a="${p0[$i]}" -v b="${p1[$i]}" -v hz="$CLK_TCK" \
            'BEGIN { printf "%s|%s|%.3f\n", n, l, (b - a) / hz }' >>"$T/parts.txt"
    done
    cmdlog "$(q BENCH_LUA_DIR=bench "${WRK_ENV[@]}" "${base[@]}" -d"${DURATION}s" "$@" "$url")"
    local line
    line="$(grep '^BENCH ' "$T/wrk_$name.txt" | tail -1)" || { fail "$name: no BENCH line in wrk's output"; return 0; }
    local -A v=()
    local kv
    for kv in ${line#BENCH }; do v[${kv%%=*}]="${kv#*=}"; done
    # server CPU (% of a core, seconds), and the CPU that neither the server nor wrk used
    # (other processes on the machine: a busy machine makes the figures worthless)
    local cpu cpu_s other wrk_cpu
    read -r cpu cpu_s other wrk_cpu < <(python3 - "$c0" "$c1" "$CLK_TCK" "$t0" "$t1" "$s0" "$s1" "$T/wrk_$name.time" <<'PY'
import sys
c0, c1, hz, t0, t1, s0, s1, tf = sys.argv[1:9]
wall = float(t1) - float(t0)
srv = (int(c1) - int(c0)) / int(hz)
busy = (int(s1) - int(s0)) / int(hz)
wrk = sum(float(x) for x in open(tf).read().split("WRKTIME", 1)[1].split()[:2])
print(f"{srv / wall * 100:.1f} {srv:.2f} {max(0.0, busy - srv - wrk) / wall * 100:.1f} {wrk / wall * 100:.1f}")
PY
    )
    echo "$name|${v[requests]}|${v[rps]}|${v[p50_us]}|${v[p90_us]}|${v[p99_us]}|${v[max_us]}|${v[status]}|${v[connect]}|${v[read]}|${v[write]}|${v[timeout]}|$cpu|$cpu_s|$other|$wrk_cpu" >>"$T/results.txt"
    local sock=$((v[connect] + v[read] + v[write] + v[timeout]))
    [ "${v[status]}" -eq 0 ] || fail "$name: ${v[status]} non-2xx/3xx answers of ${v[requests]} ($url)"
    [ "$sock" -eq 0 ] || fail "$name: socket errors: connect ${v[connect]}, read ${v[read]}, write ${v[write]}, timeout ${v[timeout]} ($url)"
    if [ -f "$T/wrk_$name.warmup.txt" ]; then
        local wl
        wl="$(grep '^BENCH ' "$T/wrk_$name.warmup.txt" | tail -1 || true)"
        case "$wl" in *" status=0 "*) ;; *) fail "$name: non-2xx answers during the warm-up: ${wl:-no BENCH line}" ;; esac
    fi
    say "  $name: $(printf '%.0f' "${v[rps]}") req/s, p99 $(python3 -c "print(f'{${v[p99_us]} / 1000:.2f}')") ms, server CPU $cpu %, wrk CPU $wrk_cpu %, other processes $other %, non-2xx ${v[status]}, socket errors $sock"
}

# ------------------------------------------------------------------ servers
# start_crmblob NAME [serve args...]: a user, then the server on a fresh db; sets CB_PID, CB_URL
# (https://... when CB_SCHEME=https: the args give --tls-cert and --tls-key)
start_crmblob() {
    local name="$1"; shift
    local db="$T/$name/crmblob.db" port
    mkdir -p "$T/$name"
    "$BIN" init --db "$db" >/dev/null || die "crmblob init failed"
    printf '%s\n' "$PASS" | "$BIN" user add "$USER_NAME" --role editor --password-stdin --db "$db" >/dev/null \
        || die "crmblob user add failed"
    port="$(free_port)"
    # shellcheck disable=SC2086
    cmdlog "$(q taskset -c "$SERVER_CPU" "$BIN" serve --listen "127.0.0.1:$port" --db "$db" "$@" $SERVE_ARGS) 2>$name.log"
    # shellcheck disable=SC2086
    taskset -c "$SERVER_CPU" "$BIN" serve --listen "127.0.0.1:$port" --db "$db" "$@" $SERVE_ARGS \
        >"$T/$name.log" 2>&1 </dev/null &
    CB_PID=$!
    PROCS+=("$CB_PID")
    CB_URL="${CB_SCHEME:-http}://127.0.0.1:$port"
    wait_http "$CB_URL/" "$CB_PID" || die "crmblob ($name) did not start"
}
api() { curl -sS -u "$USER_NAME:$PASS" "$@"; }
# setup_entities URL: persons 1..ENTITIES, each with the 25 KB JPEG
setup_entities() {
    local url="$1" i body code
    for i in $(seq "$ENTITIES"); do
        body="$(api -X POST -H 'Content-Type: application/json' \
            -d "{\"PersonId\":$i,\"Firstname\":\"Bench\",\"Lastname\":\"Mark $i\",\"ContactId\":0}" "$url/api/v1/Person")"
        case "$body" in *"\"PersonId\":$i,"*) ;; *) die "POST Person $i answered: $body" ;; esac
        code="$(api -o "$T/put.out" -w '%{http_code}' -X PUT -H 'Content-Type: image/jpeg' \
            --data-binary "@$SMALL_JPEG" "$url/api/v1/Person/$i/Image")"
        [ "$code" = 200 ] || die "PUT Person/$i/Image answered $code: $(head -c 300 "$T/put.out")"
    done
}

AUTH="Authorization: Basic $(printf '%s:%s' "$USER_NAME" "$PASS" | base64 -w0)"

# The rows of issue 7 (BENCH_ROWS group issue7), left unindented.
if sel issue7; then
# --- nginx (kept for the whole run; idle while others are measured)
NG="$T/nginx" WWW="$T/www"
mkdir -p "$NG/client_body" "$WWW/static" "$WWW/dav"
NG_PORT="$(free_port)"
if [ "$(id -u)" -eq 0 ]; then NG_USER="user $(id -un) $(id -gn);"; else NG_USER="# not root: nginx runs as $(id -un)"; fi
sed -e "s|@PREFIX@|$NG|g" -e "s|@ROOT@|$WWW|g" -e "s|@PORT@|$NG_PORT|g" -e "s|@USER@|$NG_USER|g" \
    "$BENCH/nginx.conf.in" >"$NG/nginx.conf"
cp "$SMALL_JPEG" "$WWW/static/p.jpg"
NG_URL="http://127.0.0.1:$NG_PORT"
cmdlog "# nginx: bench/nginx.conf.in with @PREFIX@=$NG @ROOT@=$WWW @PORT@=$NG_PORT"
cmdlog "$(q taskset -c "$SERVER_CPU" nginx -p "$NG/" -e "$NG/error.log" -c "$NG/nginx.conf")"
taskset -c "$SERVER_CPU" nginx -p "$NG/" -e "$NG/error.log" -c "$NG/nginx.conf" </dev/null >"$T/nginx.log" 2>&1 &
NG_PID=$!
PROCS+=("$NG_PID")
wait_http "$NG_URL/static/p.jpg" "$NG_PID" || die "nginx did not start: $(cat "$T/nginx.log" "$NG/error.log" 2>/dev/null)"
cmp -s <(curl -s "$NG_URL/static/p.jpg") "$SMALL_JPEG" || die "nginx does not serve the picture"
say "nginx $NG_URL (pid $NG_PID)"

# --- phase 1: the default-mode server
say "default crmblob: setting up $ENTITIES persons with pictures"
start_crmblob default --cors-origin "$CORS_ORIGIN"
DEF_PID="$CB_PID" DEF_URL="$CB_URL"
setup_entities "$DEF_URL"
cmp -s <(api "$DEF_URL/api/v1/Person/1/Image") "$SMALL_JPEG" || die "crmblob does not serve the picture back"
api -o "$WWW/static/imageinfo.json" "$DEF_URL/api/v1/Person/1/ImageInfo"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["BlobId"] > 0' "$WWW/static/imageinfo.json" \
    || die "ImageInfo is not a BlobEntity: $(head -c 300 "$WWW/static/imageinfo.json")"
extra info_bytes "$(stat -c %s "$WWW/static/imageinfo.json")"
api -o "$T/tz.json" "$DEF_URL/api/v1/TimeZone/base"
extra tz_bytes "$(stat -c %s "$T/tz.json")"
for _ in 1 2 3; do api -o /dev/null "$DEF_URL/api/v1/Person/1/ImageInfo"; api -o /dev/null "$DEF_URL/api/v1/Person/1/Image"; done
sleep 1
extra idle_rss_kb "$(status_kb "$DEF_PID" VmRSS)"
extra idle_hwm_kb "$(status_kb "$DEF_PID" VmHWM)"
say "idle RSS $(status_kb "$DEF_PID" VmRSS) kB"

say "row: GET Image 25 KB"
WRK_ENV=()
measure cb_get_image "$DEF_PID" "$DEF_URL/api/v1/Person/1/Image" -s "$BENCH/stats.lua" -H "$AUTH"
measure ng_get_jpeg "$NG_PID" "$NG_URL/static/p.jpg" -s "$BENCH/stats.lua"

# --- how far libmicrohttpd itself goes: bench/mhd_floor.c answers the same
# bytes from memory and does nothing else (built here, stopped right after)
FLOOR_BIN="$T/mhd_floor"
# shellcheck disable=SC2046
cc -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -Werror -o "$FLOOR_BIN" "$BENCH/mhd_floor.c" \
    $(pkg-config --cflags --libs libmicrohttpd) || die "cannot build bench/mhd_floor.c"
FLOOR_PORT="$(free_port)"
cmdlog "$(q cc -std=c11 -D_GNU_SOURCE -O2 -o mhd_floor bench/mhd_floor.c) \$(pkg-config --cflags --libs libmicrohttpd)"
cmdlog "$(q taskset -c "$SERVER_CPU" ./mhd_floor "${SMALL_JPEG#"$REPO"/}" "$FLOOR_PORT")"
taskset -c "$SERVER_CPU" "$FLOOR_BIN" "$SMALL_JPEG" "$FLOOR_PORT" >"$T/mhd_floor.log" 2>&1 </dev/null &
FLOOR_PID=$!
PROCS+=("$FLOOR_PID")
wait_http "http://127.0.0.1:$FLOOR_PORT/" "$FLOOR_PID" || die "mhd_floor did not start: $(cat "$T/mhd_floor.log")"
cmp -s <(curl -s "http://127.0.0.1:$FLOOR_PORT/p.jpg") "$SMALL_JPEG" || die "mhd_floor does not serve the picture"
measure mhd_get_jpeg "$FLOOR_PID" "http://127.0.0.1:$FLOOR_PORT/p.jpg" -s "$BENCH/stats.lua"
stop_pid "$FLOOR_PID"

say "row: GET ImageInfo"
measure cb_get_info "$DEF_PID" "$DEF_URL/api/v1/Person/1/ImageInfo" -s "$BENCH/stats.lua" -H "$AUTH"
measure ng_get_json "$NG_PID" "$NG_URL/static/imageinfo.json" -s "$BENCH/stats.lua"

say "row: PUT ImageInfo (default mode)"
WRK_ENV=(BENCH_METHOD=PUT BENCH_PREFIX=/api/v1/Person/ BENCH_SUFFIX=/ImageInfo BENCH_ENTITIES="$ENTITIES" BENCH_FIRST_ID=1)
measure cb_put_info "$DEF_PID" "$DEF_URL/" -s "$BENCH/put_json.lua" -H "$AUTH" -H "Content-Type: application/json"
WRK_ENV=()

say "auth cost: authenticated conditional GET (304) vs unauthenticated preflight (204)"
# Two bodiless answers for the same path: the revalidation a browser or
# client cache makes (Basic auth, If-None-Match of the current ETag: 304)
# and the CORS preflight, answered from the configuration without
# credentials (204). The authenticated one also looks the record up.
INFO_PATH="/api/v1/Person/1/ImageInfo"
ETAG="$(curl -s -D - -o /dev/null -H "$AUTH" "$DEF_URL$INFO_PATH" | awk -F': ' 'tolower($1) == "etag" {print $2}' | tr -d '\r')"
[ -n "$ETAG" ] || fail "GET ImageInfo has no ETag"
code="$(curl -s -o /dev/null -w '%{http_code}' -H "$AUTH" -H "If-None-Match: $ETAG" "$DEF_URL$INFO_PATH")"
[ "$code" = 304 ] || fail "GET ImageInfo with If-None-Match of its ETag answered $code, not 304"
PREFLIGHT=(-H "Origin: $CORS_ORIGIN" -H "Access-Control-Request-Method: GET")
pf_code="$(curl -s -o /dev/null -w '%{http_code}' -X OPTIONS "${PREFLIGHT[@]}" "$DEF_URL$INFO_PATH")"
case "$pf_code" in 2??) ;; *) fail "the CORS preflight answered $pf_code" ;; esac
measure cb_auth "$DEF_PID" "$DEF_URL$INFO_PATH" -s "$BENCH/stats.lua" -H "$AUTH" -H "If-None-Match: $ETAG"
WRK_ENV=(BENCH_METHOD=OPTIONS)
measure cb_noauth "$DEF_PID" "$DEF_URL$INFO_PATH" -s "$BENCH/stats.lua" "${PREFLIGHT[@]}"
WRK_ENV=()
# for comparison: an authenticated request that builds a small carrier with jansson
measure cb_auth_tz "$DEF_PID" "$DEF_URL/api/v1/TimeZone/base" -s "$BENCH/stats.lua" -H "$AUTH"
extra after_rows_rss_kb "$(status_kb "$DEF_PID" VmRSS)"
stop_pid "$DEF_PID"

# --- phase 2: json-server with equivalent records
if [ -z "$JS_SKIP" ]; then
    say "row: json-server PATCH of an equivalent record"
    mkdir -p "$T/js"
    python3 - "$WWW/static/imageinfo.json" "$ENTITIES" "$T/js/db.json" <<'PY'
import json, sys
carrier = json.load(open(sys.argv[1]))
records = []
for i in range(1, int(sys.argv[2]) + 1):
    r = dict(carrier)
    r["BlobId"] = i
    records.append({"id": i, **r})
json.dump({"imageinfo": records}, open(sys.argv[3], "w"), indent=2)
PY
    JS_PORT="$(free_port)"
    cmdlog "$(q taskset -c "$SERVER_CPU" node "$JSON_SERVER" --quiet --host 127.0.0.1 --port "$JS_PORT" "$T/js/db.json")"
    taskset -c "$SERVER_CPU" node "$JSON_SERVER" --quiet --host 127.0.0.1 --port "$JS_PORT" "$T/js/db.json" \
        >"$T/json-server.log" 2>&1 </dev/null &
    JS_PID=$!
    PROCS+=("$JS_PID")
    wait_http "http://127.0.0.1:$JS_PORT/imageinfo/1" "$JS_PID" || die "json-server did not start"
    code="$(curl -s -o "$T/js.out" -w '%{http_code}' -X PATCH -H 'Content-Type: application/json' \
        -d '{"Description":"check"}' "http://127.0.0.1:$JS_PORT/imageinfo/1")"
    if [ "$code" != 200 ] || ! grep -q '"check"' "$T/js.out"; then
        die "json-server PATCH answered $code: $(head -c 200 "$T/js.out")"
    fi
    WRK_ENV=(BENCH_METHOD=PATCH BENCH_PREFIX=/imageinfo/ BENCH_SUFFIX= BENCH_ENTITIES="$ENTITIES" BENCH_FIRST_ID=1)
    measure js_patch "$JS_PID" "http://127.0.0.1:$JS_PORT/" -s "$BENCH/put_json.lua" -H "Content-Type: application/json"
    WRK_ENV=()
    stop_pid "$JS_PID"
else
    say "row: json-server skipped ($JS_SKIP)"
    extra skip_put_info_json_server "$JS_SKIP"
fi

# --- phase 3: the --durable server
say "durable crmblob: setting up $ENTITIES persons with pictures"
start_crmblob durable --durable
DUR_PID="$CB_PID" DUR_URL="$CB_URL"
setup_entities "$DUR_URL"
say "row: PUT ImageInfo (durable)"
WRK_ENV=(BENCH_METHOD=PUT BENCH_PREFIX=/api/v1/Person/ BENCH_SUFFIX=/ImageInfo BENCH_ENTITIES="$ENTITIES" BENCH_FIRST_ID=1)
measure cbd_put_info "$DUR_PID" "$DUR_URL/" -s "$BENCH/put_json.lua" -H "$AUTH" -H "Content-Type: application/json"
say "row: PUT 200 KB JPEG (durable)"
WRK_ENV=(BENCH_METHOD=PUT BENCH_PREFIX=/api/v1/Person/ BENCH_SUFFIX=/Image BENCH_ENTITIES="$ENTITIES" BENCH_FIRST_ID=1 BENCH_BODY="$MID_JPEG")
measure cbd_put_jpeg "$DUR_PID" "$DUR_URL/" -s "$BENCH/put_file.lua" -H "$AUTH" -H "Content-Type: image/jpeg"
cmp -s <(api "$DUR_URL/api/v1/Person/1/Image") "$MID_JPEG" || fail "after the PUT row, Person 1's picture is not the uploaded JPEG"
WRK_ENV=(BENCH_METHOD=PUT BENCH_PREFIX=/dav/p BENCH_SUFFIX=.jpg BENCH_ENTITIES="$ENTITIES" BENCH_FIRST_ID=1 BENCH_BODY="$MID_JPEG")
measure ng_dav_put "$NG_PID" "$NG_URL/" -s "$BENCH/put_file.lua" -H "Content-Type: image/jpeg"
WRK_ENV=()
cmp -s "$WWW/dav/p1.jpg" "$MID_JPEG" || fail "nginx's WebDAV PUT did not store the JPEG"
stop_pid "$DUR_PID"
stop_pid "$NG_PID"

# --- phase 4: peak RSS over concurrent large uploads (a fresh default server)
say "making a ${UP_W}x${UP_H} JPEG (~$UP_MB MB) for $UPLOADS concurrent uploads"
IMG="$T/upload.jpg"
(
    cd "$T"
    vips xyz xy.v "$UP_W" "$UP_H"
    vips extract_band xy.v x.v 0
    vips extract_band xy.v y.v 1
    vips linear x.v r.v "$(python3 -c "print(220/$UP_W)")" 20
    vips linear y.v g.v "$(python3 -c "print(200/$UP_H)")" 30
    vips gaussnoise n1.v "$UP_W" "$UP_H" --mean 0 --sigma "$UP_SIGMA" --seed 1
    vips gaussnoise n2.v "$UP_W" "$UP_H" --mean 0 --sigma "$UP_SIGMA" --seed 2
    vips add r.v n1.v rn.v
    vips add g.v n2.v gn.v
    vips gaussnoise b.v "$UP_W" "$UP_H" --mean 110 --sigma "$UP_SIGMA" --seed 3
    vips bandjoin "rn.v gn.v b.v" rgb.v
    vips cast rgb.v u.v uchar
    vips copy u.v s.v --interpretation srgb
    vips jpegsave s.v "$IMG" --Q "$UP_Q" --strip
    rm -f ./*.v
) || die "vips could not make the upload picture"
UP_BYTES="$(stat -c %s "$IMG")"
[ "$UP_BYTES" -le 10485760 ] || die "the upload JPEG is $UP_BYTES bytes, over crmblob's 10 MiB limit"
extra upload_bytes "$UP_BYTES"; extra upload_dims "${UP_W}x${UP_H}"; extra upload_mb "$UP_MB"

# All the uploads come from this one address: the per-address connection
# cap (--max-conns-per-ip, 128 by default, for hostile clients) would refuse
# 72 of 200, which 200 clients of a real installation never meet.
start_crmblob uploads --max-conns-per-ip "$((UPLOADS + 16))"
UP_PID="$CB_PID" UP_URL="$CB_URL"
for i in $(seq "$UPLOADS"); do
    body="$(api -X POST -H 'Content-Type: application/json' \
        -d "{\"PersonId\":$i,\"Firstname\":\"Up\",\"Lastname\":\"Load $i\",\"ContactId\":0}" "$UP_URL/api/v1/Person")"
    case "$body" in *"\"PersonId\":$i,"*) ;; *) die "POST Person $i answered: $body" ;; esac
done
extra hwm_before_kb "$(status_kb "$UP_PID" VmHWM)"
# reset the high-water mark to the current RSS (Linux >= 4.0), so VmHWM is the peak of the uploads
if echo 5 >"/proc/$UP_PID/clear_refs" 2>/dev/null; then extra hwm_reset 1; else extra hwm_reset 0; fi
say "$UPLOADS concurrent uploads of $UP_BYTES bytes"
cmdlog "# $UPLOADS threads at once (python3 http.client, taskset -c $LOAD_CPU): PUT /api/v1/Person/{1..$UPLOADS}/Image of the ${UP_W}x${UP_H} JPEG, Basic auth"
taskset -c "$LOAD_CPU" python3 - "$UP_URL" "$USER_NAME" "$PASS" "$IMG" "$UPLOADS" "$UP_PID" >"$T/uploads.txt" <<'PY' \
    || die "the upload client failed: $(tail -n 5 "$T/uploads.txt")"
import base64, collections, http.client, sys, threading, time
from urllib.parse import urlsplit
url, user, pw, path, n, pid = sys.argv[1:7]
n = int(n)
u = urlsplit(url)
body = open(path, "rb").read()
auth = "Basic " + base64.b64encode(f"{user}:{pw}".encode()).decode()
results = [None] * n
start = threading.Barrier(n + 1)
done = threading.Event()
max_rss = [0]

def rss_kb():
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0

def sampler():
    while not done.is_set():
        try:
            max_rss[0] = max(max_rss[0], rss_kb())
        except OSError:
            return
        time.sleep(0.02)

retries = [0]
closed_early = [0]

# A 503 with Retry-After is the server's image checks all busy (three
# workers, a bounded queue) or its upload spools full (--spool-mb): the
# upload is sent again after the delay it names, as a client should. A
# refusal sent before the body was read closes the connection: the client
# may meet it as a broken pipe while still sending, and then reads the
# answer if it is still there, else waits a second, as for a 503. Both
# kinds of retries are counted and reported.
def send(c, i):
    try:
        c.request("PUT", f"/api/v1/Person/{i + 1}/Image", body=body,
                  headers={"Authorization": auth, "Content-Type": "image/jpeg"})
    except (BrokenPipeError, ConnectionResetError):
        closed_early[0] += 1
    try:
        return c.getresponse()
    except (ConnectionResetError, http.client.RemoteDisconnected):
        return None

def upload(i):
    first = True
    for _ in range(60):
        c = http.client.HTTPConnection(u.hostname, u.port, timeout=600)
        try:
            c.connect()
            if first:
                start.wait()
                first = False
            r = send(c, i)
            if r is None:  # closed before an answer could be read
                retries[0] += 1
                results[i] = "closed"
                time.sleep(1)
                continue
            r.read()
            results[i] = str(r.status)
            if r.status != 503 or r.getheader("Retry-After") is None:
                return
            retries[0] += 1
            time.sleep(float(r.getheader("Retry-After")))
        except Exception as e:  # noqa: BLE001 - every failure is reported
            results[i] = type(e).__name__
            return
        finally:
            c.close()

threads = [threading.Thread(target=upload, args=(i,)) for i in range(n)]
for t in threads:
    t.start()
s = threading.Thread(target=sampler)
s.start()
t0 = time.monotonic()
start.wait()
for t in threads:
    t.join()
secs = time.monotonic() - t0
done.set()
s.join()
count = collections.Counter(results)
print(f"uploads_total={n}")
print(f"uploads_ok={count.get('200', 0)}")
print(f"upload_statuses={', '.join(f'{k}: {v}' for k, v in sorted(count.items()))}")
print(f"upload_secs={secs:.1f}")
print(f"upload_retries={retries[0]}")
print(f"upload_closed_early={closed_early[0]}")
print(f"upload_max_rss_kb={max_rss[0]}")
PY
cat "$T/uploads.txt" >>"$T/extras.txt"
extra upload_hwm_kb "$(status_kb "$UP_PID" VmHWM)"
up_ok="$(sed -n 's/^uploads_ok=//p' "$T/uploads.txt")"
[ "$up_ok" = "$UPLOADS" ] || fail "uploads: only $up_ok of $UPLOADS answered 200 ($(sed -n 's/^upload_statuses=//p' "$T/uploads.txt"))"
say "  uploads: $up_ok/$UPLOADS OK in $(sed -n 's/^upload_secs=//p' "$T/uploads.txt") s, VmHWM $(status_kb "$UP_PID" VmHWM) kB"
stop_pid "$UP_PID"
fi   # sel issue7

# ------------------------------------------------------------------ issue 18
# The four rows on each setup: sq1 (one SQLite server: the issue-7 rows, or
# group sqlite1 alone), sq2 (two servers on one SQLite file behind haproxy),
# pg1 (one server on PostgreSQL), pg2 (two on PostgreSQL behind haproxy).
# A setup that cannot run is recorded as skip18_<setup>=<reason>.
PG_CPU="${BENCH_PG_CPU:-$SERVER_CPU}"
PROXY_CPU="${BENCH_PROXY_CPU:-$SERVER_CPU}"
ROWS18=(get_image get_info put_info put_jpeg)
PG_DIR="" PG_PID="" PG_REASON=""
extra pg_cpu "$PG_CPU"; extra proxy_cpu "$PROXY_CPU"; extra rows_sel "${ROWS_SEL:1:${#ROWS_SEL}-2}"

# row_name SETUP ROW: the wrk run's name (sq1 keeps the issue-7 names)
row_name() {
    case "$1:$2" in
    sq1:get_image) echo cb_get_image ;; sq1:get_info) echo cb_get_info ;;
    sq1:put_info) echo cbd_put_info ;; sq1:put_jpeg) echo cbd_put_jpeg ;;
    *) echo "$1_$2" ;;
    esac
}
# first_error LOG: the first error line a crmblob wrote, without its time stamp
first_error() {
    local l
    l="$(grep -m1 -E '^[^ ]+ (error|fatal) ' "$1" 2>/dev/null || true)"
    [ -n "$l" ] || l="$(grep -m1 -v ' info ' "$1" 2>/dev/null || true)"
    l="${l#* }"; l="${l#error }"; l="${l#fatal }"
    echo "${l:-no error line in $(basename "$1")}"
}
# serve NAME DB [args...]: crmblob serve, pinned, with its own spool; sets
# SV_PID SV_URL SV_PORT, or returns 1 with the server's first error line in SV_ERR
serve() {
    local name="$1" db="$2"; shift 2
    mkdir -p "$T/$name"
    SV_PORT="$(free_port)"
    local cmd=(taskset -c "$SERVER_CPU" "$BIN" serve --listen "127.0.0.1:$SV_PORT" --db "$db"
        --spool-dir "$T/$name" "$@")
    # shellcheck disable=SC2086
    cmdlog "$(q "${cmd[@]}" $SERVE_ARGS) 2>$name.log"
    # shellcheck disable=SC2086
    "${cmd[@]}" $SERVE_ARGS >"$T/$name.log" 2>&1 </dev/null &
    SV_PID=$!
    PROCS+=("$SV_PID")
    SV_URL="http://127.0.0.1:$SV_PORT"
    wait_http "$SV_URL/" "$SV_PID" && return 0
    SV_ERR="$(first_error "$T/$name.log")"
    stop_pid "$SV_PID"
    return 1
}
# haproxy_up NAME PORT1 PORT2: haproxy with dist/haproxy/crmblob.cfg in front
# of the two servers, pinned; waits until both are UP; sets HP_PID HP_URL
haproxy_up() {
    local name="$1" port admin="$T/$1/haproxy.sock"
    mkdir -p "$T/$name"
    port="$(free_port)"
    local envs=(CRMBLOB_BIND="127.0.0.1:$port" CRMBLOB_S1="127.0.0.1:$2" CRMBLOB_S2="127.0.0.1:$3"
        CRMBLOB_ADMIN="$admin" CRMBLOB_LOG=stderr)
    cmdlog "$(q env "${envs[@]}" taskset -c "$PROXY_CPU" haproxy -db -f dist/haproxy/crmblob.cfg) 2>$name.haproxy.log"
    env "${envs[@]}" taskset -c "$PROXY_CPU" haproxy -db -f "$REPO/dist/haproxy/crmblob.cfg" \
        >"$T/$name.haproxy.log" 2>&1 </dev/null &
    HP_PID=$!
    PROCS+=("$HP_PID")
    HP_URL="http://127.0.0.1:$port"
    python3 - "$admin" "$HP_PID" <<'PY' || die "haproxy ($name): both servers not UP: $(tail -n 5 "$T/$name.haproxy.log")"
import os, socket, sys, time
for _ in range(300):   # 30 s, while haproxy lives
    try:
        os.kill(int(sys.argv[2]), 0)
    except OSError:
        sys.exit(1)
    try:
        s = socket.socket(socket.AF_UNIX)
        s.connect(sys.argv[1])
        s.sendall(b"show stat\n")
        out = b""
        while chunk := s.recv(65536):
            out += chunk
        s.close()
        rows = [l.split(",") for l in out.decode().splitlines() if l.startswith("crmblob,s")]
        if len(rows) == 2 and all(r[17] == "UP" for r in rows):
            sys.exit(0)
    except OSError:
        pass
    time.sleep(0.1)
sys.exit(1)
PY
}
# rows18 SETUP URL "PIDS" ROW...: the rows on one setup (PARTS set by the caller)
rows18() {
    local setup="$1" url="$2" pids="$3" row; shift 3
    for row in "$@"; do
        say "row: $setup $row"
        case "$row" in
        get_image)
            WRK_ENV=()
            measure "$(row_name "$setup" get_image)" "$pids" "$url/api/v1/Person/1/Image" -s "$BENCH/stats.lua" -H "$AUTH" ;;
        get_info)
            WRK_ENV=()
            measure "$(row_name "$setup" get_info)" "$pids" "$url/api/v1/Person/1/ImageInfo" -s "$BENCH/stats.lua" -H "$AUTH" ;;
        put_info)
            WRK_ENV=(BENCH_METHOD=PUT BENCH_PREFIX=/api/v1/Person/ BENCH_SUFFIX=/ImageInfo BENCH_ENTITIES="$ENTITIES" BENCH_FIRST_ID=1)
            measure "$(row_name "$setup" put_info)" "$pids" "$url/" -s "$BENCH/put_json.lua" -H "$AUTH" -H "Content-Type: application/json" ;;
        put_jpeg)
            WRK_ENV=(BENCH_METHOD=PUT BENCH_PREFIX=/api/v1/Person/ BENCH_SUFFIX=/Image BENCH_ENTITIES="$ENTITIES" BENCH_FIRST_ID=1 BENCH_BODY="$MID_JPEG")
            measure "$(row_name "$setup" put_jpeg)" "$pids" "$url/" -s "$BENCH/put_file.lua" -H "$AUTH" -H "Content-Type: image/jpeg"
            cmp -s <(api "$url/api/v1/Person/1/Image") "$MID_JPEG" || fail "$setup: after the PUT row, Person 1's picture is not the uploaded JPEG" ;;
        esac
        WRK_ENV=()
    done
}
# setup18 SETUP N DB ROWS...: N servers (1 or 2, with haproxy) on DB, the
# persons, then the rows; a server that does not start skips the setup
setup18() {
    local setup="$1" n="$2" db="$3" args=() pids="" ports=() i p url; shift 3
    [[ "$db" == postgres* ]] || args=(--durable)
    [ "$n" = 1 ] || args+=(--trusted-proxy 127.0.0.1)
    say "$setup: $n crmblob on $(printf '%s' "$db" | sed 's|^postgresql://[^@]*@|postgresql://|'), setting up $ENTITIES persons"
    if ! { "$BIN" init --db "$db" && printf '%s\n' "$PASS" |
            "$BIN" user add "$USER_NAME" --role editor --password-stdin --db "$db"; } \
            >"$T/$setup.useradd.log" 2>&1; then
        # the reason is the server's own first error line (it refuses the same --db)
        if serve "$setup-s1" "$db" "${args[@]}"; then
            stop_pid "$SV_PID"
            SV_ERR="crmblob user add: $(first_error "$T/$setup.useradd.log")"
        fi
        extra "skip18_$setup" "$SV_ERR"; say "  $setup not run: $SV_ERR"; return 0
    fi
    for i in $(seq "$n"); do
        if ! serve "$setup-s$i" "$db" "${args[@]}"; then
            extra "skip18_$setup" "$SV_ERR"; say "  $setup not run: $SV_ERR"
            for p in $pids; do stop_pid "$p"; done
            return 0
        fi
        pids+="${pids:+ }$SV_PID"; ports+=("$SV_PORT")
        [ "$i" = 1 ] && url="$SV_URL"
    done
    setup_entities "$url"
    PARTS=("crmblob=$pids")
    [ -z "$PG_PID" ] || [[ "$db" != postgres* ]] || PARTS+=("postgres=$PG_PID")
    if [ "$n" = 2 ]; then
        haproxy_up "$setup" "${ports[0]}" "${ports[1]}"
        PARTS+=("haproxy=$HP_PID")
        url="$HP_URL"
    fi
    local all=""
    for i in "${PARTS[@]}"; do all+="${all:+ }${i#*=}"; done
    rows18 "$setup" "$url" "$all" "$@"
    PARTS=()
    [ "$n" = 1 ] || stop_pid "$HP_PID"
    for p in $pids; do stop_pid "$p"; done
}
# pg_up: the throwaway cluster (fsync on), pinned; sets PG_DIR PG_PID PGHOST...,
# or PG_REASON when it cannot run
pg_up() {
    local bin=""
    bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)"
    [ -x "$bin/initdb" ] || { PG_REASON="PostgreSQL is not installed (Debian package postgresql)"; return 1; }
    PG_DIR="$T/pg"
    if [ "$(id -u)" -eq 0 ]; then
        # pg-cluster.sh runs the server as postgres, which must reach the directory
        chmod o+x "$T"
        if ! runuser -u postgres -- test -x "$T"; then
            PG_DIR="$(mktemp -d /var/tmp/crmblob-bench-pg.XXXXXX)"; rmdir "$PG_DIR"
            extra pg_dir_note "the postgres user cannot reach the temporary directory (a closed parent): the cluster is in $PG_DIR"
        fi
    fi
    cmdlog "$(q taskset -c "$PG_CPU" bash scripts/pg-cluster.sh start "$PG_DIR")   # no --fast: fsync on"
    if ! taskset -c "$PG_CPU" bash "$REPO/scripts/pg-cluster.sh" start "$PG_DIR" >"$T/pg-env.sh" 2>"$T/pg-start.log"; then
        PG_REASON="the PostgreSQL cluster did not start: $(tail -n 1 "$T/pg-start.log")"
        return 1
    fi
    # shellcheck disable=SC1091
    . "$T/pg-env.sh"
    PG_PID="$(head -1 "$PG_DIR/data/postmaster.pid")"
    "$bin/createdb" -h "$PGHOST" -p "$PGPORT" -U "$PGUSER" crmblob_bench2 || { PG_REASON="createdb failed"; return 1; }
    {
        echo "postgresql=$("$bin/postgres" --version | sed 's/^postgres (PostgreSQL) //')"
        echo "pg_dir=$PG_DIR on $(findmnt -n -o FSTYPE -T "$(dirname "$PG_DIR")" 2>/dev/null || echo '?')"
        echo "pg_settings=fsync $("$bin/psql" -X -tA -h "$PGHOST" -p "$PGPORT" -U "$PGUSER" -d postgres -c 'SHOW fsync'), synchronous_commit $("$bin/psql" -X -tA -h "$PGHOST" -p "$PGPORT" -U "$PGUSER" -d postgres -c 'SHOW synchronous_commit'), shared_buffers $("$bin/psql" -X -tA -h "$PGHOST" -p "$PGPORT" -U "$PGUSER" -d postgres -c 'SHOW shared_buffers'); postmaster on CPU $(taskset -pc "$PG_PID" | sed 's/.*: //')"
    } >>"$T/machine.txt"
}
pg_url() { echo "postgresql://$PGUSER@/$1?host=$PGHOST&port=$PGPORT"; }

HAVE_HAPROXY=1
command -v haproxy >/dev/null || HAVE_HAPROXY=0
if sel sqlite1 && ! sel issue7; then
    setup18 sq1 1 "$T/sq1/crmblob.db" "${ROWS18[@]}"
fi
if sel sqlite2; then
    if [ "$HAVE_HAPROXY" = 1 ]; then
        setup18 sq2 2 "$T/sq2/crmblob.db" "${ROWS18[@]}"
    else
        extra skip18_sq2 "haproxy is not installed"
    fi
fi
if sel pg || sel pg2; then
    # a smoke run measures one PostgreSQL row (PUT ImageInfo, one server)
    PG_ROWS=("${ROWS18[@]}")
    [ "$SMOKE" = 1 ] && PG_ROWS=(put_info)
    if pg_up; then
        ! sel pg || setup18 pg1 1 "$(pg_url crmblob_test)" "${PG_ROWS[@]}"
        if ! sel pg2; then :
        elif [ "$SMOKE" = 1 ]; then extra skip18_pg2 "a smoke run measures one PostgreSQL row"
        elif [ "$HAVE_HAPROXY" = 0 ]; then extra skip18_pg2 "haproxy is not installed"
        else setup18 pg2 2 "$(pg_url crmblob_bench2)" "${PG_ROWS[@]}"
        fi
    else
        say "PostgreSQL rows not run: $PG_REASON"
        ! sel pg || extra skip18_pg1 "$PG_REASON"
        ! sel pg2 || extra skip18_pg2 "$PG_REASON"
    fi
    [ -z "$PG_DIR" ] || bash "$REPO/scripts/pg-cluster.sh" stop "$PG_DIR" || true
    PG_DIR=""
fi
# ------------------------------------------------------------------ issue 19: TLS
# GET Image 25 KB over TLS, Basic auth: crmblob --tls-cert/--tls-key against
# nginx over TLS serving the same bytes as a static file, both with one
# self-signed P-256 certificate made here, TLS 1.2 and 1.3 (wrk negotiates
# 1.3; keep-alive: handshakes are a few per connection, the row measures
# the encryption of the answers). Runs tls_cb_get_image and tls_ng_get_jpeg.
if sel tls; then
    command -v openssl >/dev/null || die "openssl is missing (bash scripts/bench-deps.sh installs it)"
    TD="$T/tls"
    mkdir -p "$TD/nginx/client_body" "$TD/www/static"
    cmdlog "$(q openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout tls/key.pem -out tls/cert.pem -days 2 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1)"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$TD/key.pem" \
        -out "$TD/cert.pem" -days 2 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
        >"$TD/openssl.log" 2>&1 || die "openssl req failed: $(tail -n 3 "$TD/openssl.log")"
    cp "$SMALL_JPEG" "$TD/www/static/p.jpg"
    TNG_PORT="$(free_port)"
    if [ "$(id -u)" -eq 0 ]; then TNG_USER="user $(id -un) $(id -gn);"; else TNG_USER="# not root: nginx runs as $(id -un)"; fi
    sed -e "s|@PREFIX@|$TD/nginx|g" -e "s|@ROOT@|$TD/www|g" -e "s|@PORT@|$TNG_PORT|g" -e "s|@USER@|$TNG_USER|g" \
        -e "s|@CERT@|$TD/cert.pem|g" -e "s|@KEY@|$TD/key.pem|g" "$BENCH/nginx-tls.conf.in" >"$TD/nginx/nginx.conf"
    cmdlog "# nginx over TLS: bench/nginx-tls.conf.in with @PREFIX@=$TD/nginx @ROOT@=$TD/www @PORT@=$TNG_PORT @CERT@=$TD/cert.pem @KEY@=$TD/key.pem"
    cmdlog "$(q taskset -c "$SERVER_CPU" nginx -p "$TD/nginx/" -e "$TD/nginx/error.log" -c "$TD/nginx/nginx.conf")"
    taskset -c "$SERVER_CPU" nginx -p "$TD/nginx/" -e "$TD/nginx/error.log" -c "$TD/nginx/nginx.conf" \
        </dev/null >"$T/nginx-tls.log" 2>&1 &
    TNG_PID=$!
    PROCS+=("$TNG_PID")
    TNG_URL="https://127.0.0.1:$TNG_PORT"
    wait_http "$TNG_URL/static/p.jpg" "$TNG_PID" || die "nginx over TLS did not start: $(cat "$T/nginx-tls.log" "$TD/nginx/error.log" 2>/dev/null)"
    cmp -s <(curl -s --cacert "$TD/cert.pem" "$TNG_URL/static/p.jpg") "$SMALL_JPEG" || die "nginx over TLS does not serve the picture"
    say "tls: nginx $TNG_URL (pid $TNG_PID); crmblob: setting up $ENTITIES persons over TLS"
    CB_SCHEME=https start_crmblob tls-cb --tls-cert "$TD/cert.pem" --tls-key "$TD/key.pem"
    TCB_PID="$CB_PID" TCB_URL="$CB_URL"
    CURL_CA_BUNDLE="$TD/cert.pem" setup_entities "$TCB_URL"
    cmp -s <(api --cacert "$TD/cert.pem" "$TCB_URL/api/v1/Person/1/Image") "$SMALL_JPEG" \
        || die "crmblob over TLS does not serve the picture back"
    WRK_ENV=()
    say "row: tls GET Image"
    measure tls_cb_get_image "$TCB_PID" "$TCB_URL/api/v1/Person/1/Image" -s "$BENCH/stats.lua" -H "$AUTH"
    measure tls_ng_get_jpeg "$TNG_PID" "$TNG_URL/static/p.jpg" -s "$BENCH/stats.lua"
    stop_pid "$TCB_PID"
    stop_pid "$TNG_PID"
fi

# ------------------------------------------------------------------ issue 19: import
# `crmblob import DIR --entity person` of IMP_N distinct small JPEGs (the
# 25 KB photo, each with its number in a COM segment) into a fresh SQLite
# database, against the same uploads made by a curl loop (PUT Image, one
# curl process a file, IMP_P at a time with xargs -P) to a server on a
# fresh SQLite database of the same kind (no --durable on either side).
# The import's time includes creating the persons (they do not exist);
# the curl side's persons are created before its clock starts. Neither
# side is pinned: the import is client and server in one process.
if sel import; then
    IMP_N="${BENCH_IMPORT_N:-10000}"
    [ "$SMOKE" = 1 ] && IMP_N="${BENCH_IMPORT_N:-200}"
    IMP_P="${BENCH_IMPORT_THREADS:-2}"
    ID="$T/import"
    mkdir -p "$ID/pics"
    say "import: making $IMP_N JPEGs"
    python3 - "$SMALL_JPEG" "$ID/pics" "$IMP_N" <<'PY' || die "making the import's pictures failed"
import sys
jpg = open(sys.argv[1], "rb").read()
for i in range(1, int(sys.argv[3]) + 1):
    com = f"crmblob bench picture {i}".encode()
    with open(f"{sys.argv[2]}/{i}.jpg", "wb") as f:
        f.write(jpg[:2] + b"\xff\xfe" + (len(com) + 2).to_bytes(2, "big") + com + jpg[2:])
PY
    cmdlog "$(q "$BIN" import import/pics --entity person --threads "$IMP_P" --db import/imp.db)"
    t0="$(now)"
    "$BIN" import "$ID/pics" --entity person --threads "$IMP_P" --db "$ID/imp.db" \
        >"$ID/import.out" 2>"$ID/import.err" || fail "import: crmblob import failed: $(tail -n 3 "$ID/import.err")"
    t1="$(now)"
    grep -q "^imported $IMP_N pictures" "$ID/import.out" || fail "import: $(cat "$ID/import.out")"
    extra imp_n "$IMP_N"; extra imp_threads "$IMP_P"
    extra imp_secs "$(python3 -c "print(f'{$t1 - $t0:.3f}')")"
    say "  import: $(cat "$ID/import.out") in $(python3 -c "print(f'{$t1 - $t0:.1f}')") s"
    # the curl side: a server on a fresh database, its persons made first
    mkdir -p "$ID/srv"
    "$BIN" init --db "$ID/srv/crmblob.db" >/dev/null || die "crmblob init failed"
    printf '%s\n' "$PASS" | "$BIN" user add "$USER_NAME" --role editor --password-stdin --db "$ID/srv/crmblob.db" >/dev/null \
        || die "crmblob user add failed"
    port="$(free_port)"
    # shellcheck disable=SC2086
    "$BIN" serve --listen "127.0.0.1:$port" --db "$ID/srv/crmblob.db" $SERVE_ARGS >"$T/import-srv.log" 2>&1 </dev/null &
    IS_PID=$!
    PROCS+=("$IS_PID")
    IS_URL="http://127.0.0.1:$port"
    wait_http "$IS_URL/" "$IS_PID" || die "crmblob (import's curl side) did not start"
    python3 - "$IS_URL" "$USER_NAME" "$PASS" "$IMP_N" <<'PY' || die "creating the curl side's persons failed"
import base64, http.client, json, sys
from urllib.parse import urlsplit
u = urlsplit(sys.argv[1])
c = http.client.HTTPConnection(u.hostname, u.port)
auth = "Basic " + base64.b64encode(f"{sys.argv[2]}:{sys.argv[3]}".encode()).decode()
for i in range(1, int(sys.argv[4]) + 1):
    body = json.dumps({"PersonId": i, "Firstname": "", "Lastname": "", "ContactId": 0})
    c.request("POST", "/api/v1/Person", body, {"Authorization": auth, "Content-Type": "application/json"})
    r = c.getresponse(); r.read()
    assert r.status == 201, (i, r.status)
PY
    cmdlog "cd import/pics && ls | xargs -P $IMP_P -n 1 sh -c 'curl -s -o /dev/null -w \"%{http_code}\\n\" -u \"\$0:\$1\" -X PUT -H \"Content-Type: image/jpeg\" --data-binary \"@\$3\" \"\$2/api/v1/Person/\${3%.jpg}/Image\"' USER PASS URL"
    t0="$(now)"
    # shellcheck disable=SC2016
    (cd "$ID/pics" && ls | xargs -P "$IMP_P" -n 1 sh -c 'curl -s -o /dev/null -w "%{http_code}\n" -u "$0:$1" -X PUT -H "Content-Type: image/jpeg" --data-binary "@$3" "$2/api/v1/Person/${3%.jpg}/Image"' \
        "$USER_NAME" "$PASS" "$IS_URL" 2>/dev/null) >"$ID/curl.codes"
    t1="$(now)"
    curl_ok="$(grep -c '^200$' "$ID/curl.codes" || true)"
    [ "$curl_ok" = "$IMP_N" ] || fail "import: the curl loop stored $curl_ok of $IMP_N pictures: $(sort "$ID/curl.codes" | uniq -c | tr '\n' ' ')"
    extra curl_secs "$(python3 -c "print(f'{$t1 - $t0:.3f}')")"
    say "  curl loop: $curl_ok/$IMP_N in $(python3 -c "print(f'{$t1 - $t0:.1f}')") s"
    stop_pid "$IS_PID"
fi

# the issue-7 figures the SQLite rows are compared with (report.py)
git -C "$REPO" show HEAD:BENCHMARKS.md >"$T/committed.md" 2>/dev/null || rm -f "$T/committed.md"

# ------------------------------------------------------------------ report
mkdir -p "$DATA_DIR"
python3 "$BENCH/report.py" --dir "$T" --out "$OUT" --dat "$DAT" --chart "$CHART" || die "report.py failed"
if sel issue7; then   # the chart draws the issue-7 rows
    gnuplot -e "data='$DAT'; out='$CHART'" "$BENCH/chart.gp" 2>"$T/gnuplot.err" \
        || die "gnuplot failed: $(cat "$T/gnuplot.err")"
    [ -s "$CHART" ] || die "gnuplot wrote no chart"
    echo "chart: $CHART"
fi
if [ -s "$T/failures.txt" ]; then
    echo "run.sh: the run had errors (see above and $OUT)" >&2
    exit 1
fi
