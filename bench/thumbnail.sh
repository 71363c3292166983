#!/usr/bin/env bash
# bench/thumbnail.sh — how fast and how lean is crmblob's thumbnailing?
#
# Makes a 6000x4000 JPEG (gradient + noise, Q 90) with `vips`, starts crmblob
# on a temporary database, uploads the picture and measures
#   - the cold GET ?w=256&h=256 (renders the variant) and the cached GET
#     (median of 20), with curl's %{time_total};
#   - the server's peak RSS (VmHWM from /proc/PID/status) before and after the
#     cold render;
# and, for comparison, `vipsthumbnail --size 256` on the same file under
# /usr/bin/time -v (elapsed, max RSS). Prints a small table with ratios.
#
# Usage: bench/thumbnail.sh            (CRMBLOB_BIN overrides build/crmblob;
#                                        KEEP=1 keeps the temporary directory)
# Needs: curl, vips, vipsheader, vipsthumbnail (libvips-tools), /usr/bin/time, python3.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="${CRMBLOB_BIN:-$REPO/build/crmblob}"
W=6000 H=4000 SIZE=256 RUNS=20
USER_NAME=bench PASS=bench-pw-1

die() { echo "thumbnail.sh: $*" >&2; exit 1; }
for t in curl vips vipsheader vipsthumbnail python3; do
    command -v "$t" >/dev/null || die "$t is missing"
done
[ -x /usr/bin/time ] || die "/usr/bin/time is missing (apt-get install time)"
[ -x "$BIN" ] || die "no crmblob binary at $BIN (run make)"

T="$(mktemp -d)"
SERVER_PID=""
cleanup() {
    local rc=$?
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$SERVER_PID" 2>/dev/null && kill -KILL "$SERVER_PID" 2>/dev/null || true
    fi
    if [ "$rc" -ne 0 ] && [ -s "$T/server.log" ]; then
        echo "--- server log (tail)" >&2; tail -n 30 "$T/server.log" >&2 || true
    fi
    if [ "${KEEP:-0}" = 1 ]; then echo "kept $T" >&2; else rm -rf "$T"; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- the picture
IMG="$T/big_${W}x${H}.jpg"
echo "making a ${W}x${H} JPEG ..." >&2
vips xyz "$T/xy.v" "$W" "$H"
vips extract_band "$T/xy.v" "$T/x.v" 0
vips extract_band "$T/xy.v" "$T/y.v" 1
vips linear "$T/x.v" "$T/r.v" "$(python3 -c "print(220/$W)")" 20
vips linear "$T/y.v" "$T/g.v" "$(python3 -c "print(200/$H)")" 30
vips gaussnoise "$T/n.v" "$W" "$H" --mean 0 --sigma 6 --seed 1
vips add "$T/r.v" "$T/n.v" "$T/rn.v"
vips gaussnoise "$T/b.v" "$W" "$H" --mean 110 --sigma 10 --seed 2
vips bandjoin "$T/rn.v $T/g.v $T/b.v" "$T/rgb.v"
vips cast "$T/rgb.v" "$T/u.v" uchar
vips copy "$T/u.v" "$T/s.v" --interpretation srgb
vips jpegsave "$T/s.v" "$IMG" --Q 90 --strip
rm -f "$T"/*.v
IMG_BYTES=$(stat -c %s "$IMG")
[ "$IMG_BYTES" -le 10485760 ] || die "the test JPEG is $IMG_BYTES bytes, over the 10 MiB upload limit"
[ "$(vipsheader -f width "$IMG")x$(vipsheader -f height "$IMG")" = "${W}x${H}" ] || die "bad test image"

# ---------------------------------------------------------------- the server
DB="$T/bench.db"
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
BASE="http://127.0.0.1:$PORT"
"$BIN" init --db "$DB" >/dev/null
printf '%s\n' "$PASS" | "$BIN" user add "$USER_NAME" --role admin --password-stdin --db "$DB" >/dev/null
"$BIN" serve --listen "127.0.0.1:$PORT" --db "$DB" >"$T/server.log" 2>&1 </dev/null &
SERVER_PID=$!
for _ in $(seq 100); do
    curl -s -o /dev/null "$BASE/" && break
    kill -0 "$SERVER_PID" 2>/dev/null || die "crmblob exited at start"
    sleep 0.1
done
kill -0 "$SERVER_PID" 2>/dev/null || die "crmblob is not running"

hwm_kb() { awk '/^VmHWM:/ {print $2}' "/proc/$SERVER_PID/status"; }
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$SERVER_PID/status"; }
api() { curl -sS -u "$USER_NAME:$PASS" "$@"; }

HWM_START=$(hwm_kb)
PID_JSON=$(api -X POST -H 'Content-Type: application/json' \
    -d '{"Firstname":"Bench","Lastname":"Mark","ContactId":0}' "$BASE/api/v1/Person")
EID=$(printf '%s' "$PID_JSON" | python3 -c 'import json,sys; print(json.load(sys.stdin)["PersonId"])')
code=$(api -o "$T/put.out" -w '%{http_code}' -X PUT -H 'Content-Type: image/jpeg' \
    --data-binary "@$IMG" "$BASE/api/v1/Person/$EID/Image")
[ "$code" = 200 ] || die "upload answered $code: $(head -c 300 "$T/put.out")"
URL="$BASE/api/v1/Person/$EID/Image?w=$SIZE&h=$SIZE"

HWM_BEFORE=$(hwm_kb)
COLD=$(api -o "$T/cold.jpg" -w '%{time_total}' "$URL")
HWM_AFTER=$(hwm_kb)
RSS_AFTER=$(rss_kb)
CTYPE=$(file -b --mime-type "$T/cold.jpg" 2>/dev/null || echo "?")
CDIMS="$(vipsheader -f width "$T/cold.jpg")x$(vipsheader -f height "$T/cold.jpg")"

: >"$T/warm.txt"
for _ in $(seq "$RUNS"); do
    api -o "$T/warm.jpg" -w '%{time_total}\n' "$URL" >>"$T/warm.txt"
done
cmp -s "$T/cold.jpg" "$T/warm.jpg" || echo "note: the cached answer differs from the cold one" >&2
WARM=$(sort -g "$T/warm.txt" | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else printf "%.6f\n", (a[NR/2]+a[NR/2+1])/2}')

# ---------------------------------------------------------------- vipsthumbnail
/usr/bin/time -v vipsthumbnail "$IMG" --size "$SIZE" -o "$T/vt.jpg" 2>"$T/time.txt"
VT_S=$(awk -F': ' '/Elapsed \(wall clock\)/ {
        n = split($2, p, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + p[i]; print s }' "$T/time.txt")
VT_KB=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$T/time.txt")
VDIMS="$(vipsheader -f width "$T/vt.jpg")x$(vipsheader -f height "$T/vt.jpg")"

# ---------------------------------------------------------------- report
ratio() { python3 -c "import sys; a, b = float(sys.argv[1]), float(sys.argv[2]); print(f'{a / b:.3g}x' if b else '-')" "$1" "$2"; }
mb() { python3 -c "import sys; print(f'{int(sys.argv[1]) / 1024:.1f}')" "$1"; }
ms() { python3 -c "import sys; print(f'{float(sys.argv[1]) * 1000:.1f}')" "$1"; }

echo
echo "input: ${W}x${H} JPEG Q90, $IMG_BYTES bytes; thumbnail box ${SIZE}x${SIZE}"
echo "crmblob answer: $CDIMS ($CTYPE); vipsthumbnail: $VDIMS"
if [ "${CDIMS%x*}" -gt "$SIZE" ] || [ "${CDIMS#*x}" -gt "$SIZE" ]; then
    echo "WARNING: crmblob did not scale the picture into ${SIZE}x${SIZE}; its times are not a thumbnail's"
fi
echo
printf '%-34s %14s %14s %10s\n' "metric" "crmblob" "vipsthumbnail" "ratio"
printf '%-34s %14s %14s %10s\n' "----------------------------------" "--------------" "--------------" "----------"
printf '%-34s %14s %14s %10s\n' "cold thumbnail (ms)" "$(ms "$COLD")" "$(ms "$VT_S")" "$(ratio "$COLD" "$VT_S")"
printf '%-34s %14s %14s %10s\n' "cached thumbnail, median of $RUNS (ms)" "$(ms "$WARM")" "-" "$(ratio "$WARM" "$VT_S")"
printf '%-34s %14s %14s %10s\n' "peak RSS at start (MiB)" "$(mb "$HWM_START")" "-" "-"
printf '%-34s %14s %14s %10s\n' "peak RSS after upload (MiB)" "$(mb "$HWM_BEFORE")" "-" "-"
printf '%-34s %14s %14s %10s\n' "peak RSS after cold render (MiB)" "$(mb "$HWM_AFTER")" "$(mb "$VT_KB")" "$(ratio "$HWM_AFTER" "$VT_KB")"
printf '%-34s %14s %14s %10s\n' "render cost: HWM after - before" "$(mb $((HWM_AFTER - HWM_BEFORE)))" "$(mb "$VT_KB")" "$(ratio $((HWM_AFTER - HWM_BEFORE)) "$VT_KB")"
printf '%-34s %14s %14s %10s\n' "RSS now (MiB)" "$(mb "$RSS_AFTER")" "-" "-"
printf '%-34s %14s %14s %10s\n' "cold / cached" "$(ratio "$COLD" "$WARM")" "-" "-"
