#!/usr/bin/env bash
# Installs what bench/run.sh needs, only when something is missing, so that
# `make bench` works on a fresh Debian 12 machine:
#   - Debian packages: openssl (the TLS row's certificate), nginx (its WebDAV PUT needs ngx_http_dav_module, which
#     Debian builds in: checked with `nginx -V`), wrk, gnuplot-nox, time, curl,
#     libvips-tools (`vips` makes the large upload pictures), util-linux
#     (`taskset`), python3;
#   - json-server from npm into bench/node_modules (`npm ci` from the committed
#     bench/package-lock.json, only when node_modules is missing or older than
#     the lock file). Node.js and npm are the Debian packages when missing.
# The Debian nginx package would start a system nginx on port 80: the benchmark
# runs its own nginx (own config, own prefix, loopback ports), so the package's
# service is kept from starting (a temporary policy-rc.d) and, if it started
# anyway, stopped.
# BENCH_NO_NODE=1 leaves Node.js and json-server out (the smoke run skips that row).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BENCH="$ROOT/bench"
die() { echo "bench-deps: $*" >&2; exit 1; }

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

PKGS=(nginx wrk gnuplot-nox time curl libvips-tools util-linux python3
      openssl)  # the TLS row makes its certificate
[ "${BENCH_NO_NODE:-0}" = 1 ] || {
    command -v node >/dev/null 2>&1 || PKGS+=(nodejs)
    command -v npm >/dev/null 2>&1 || PKGS+=(npm)
}
missing=()
for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
    echo "bench-deps: installing ${missing[*]}"
    # keep the nginx package from starting a system service on port 80
    POLICY=/usr/sbin/policy-rc.d
    made_policy=0
    if [ ! -e "$POLICY" ]; then
        printf '#!/bin/sh\n# bench-deps.sh: no service starts while it installs\nexit 101\n' \
            | $SUDO tee "$POLICY" >/dev/null
        $SUDO chmod 755 "$POLICY"
        made_policy=1
        trap '[ "$made_policy" = 1 ] && $SUDO rm -f "$POLICY"' EXIT
    fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
    if [ "$made_policy" = 1 ]; then $SUDO rm -f "$POLICY"; made_policy=0; fi
    # had the service started anyway (an existing policy allowing it), stop it
    if printf '%s\n' "${missing[@]}" | grep -qx nginx && pgrep -x nginx >/dev/null 2>&1; then
        if [ -r /run/nginx.pid ]; then
            echo "bench-deps: stopping the system nginx the package started"
            $SUDO service nginx stop >/dev/null 2>&1 || true
        fi
    fi
fi

# nginx must have the WebDAV module (PUT row) and sendfile; Debian's does
NGINX="$(command -v nginx || echo /usr/sbin/nginx)"
[ -x "$NGINX" ] || die "nginx is not installed"
"$NGINX" -V 2>&1 | grep -q -- '--with-http_dav_module' \
    || die "$NGINX is built without ngx_http_dav_module (needed for the WebDAV PUT row)"
command -v wrk >/dev/null || die "wrk is not installed"
command -v gnuplot >/dev/null || die "gnuplot is not installed"
command -v vips >/dev/null || die "vips (libvips-tools) is not installed"

[ "${BENCH_NO_NODE:-0}" = 1 ] && exit 0

major="$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)"
[ "$major" -ge 18 ] || die "node $(node --version 2>/dev/null || echo '?') is too old; json-server needs Node 18 or later"

# npm ci writes node_modules/.package-lock.json: it is the stamp of the last install
stamp="$BENCH/node_modules/.package-lock.json"
if [ ! -f "$BENCH/node_modules/json-server/package.json" ] || [ ! -f "$stamp" ] \
        || [ "$BENCH/package-lock.json" -nt "$stamp" ] || [ "$BENCH/package.json" -nt "$stamp" ]; then
    echo "bench-deps: npm ci in bench/"
    (cd "$BENCH" && npm ci --no-audit --no-fund --loglevel=error)
    touch "$stamp"
fi
