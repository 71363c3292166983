#!/usr/bin/env bash
# Installs the Debian 12 packages crmblob needs to build, run and test, only when
# one is missing, so that `make run` and `make test` work on a fresh machine.
set -euo pipefail
PKGS=(build-essential pkg-config libmicrohttpd-dev libjansson-dev libsqlite3-dev
      libsodium-dev libexpat1-dev libssl-dev libvips-dev libjpeg62-turbo-dev libzstd-dev tzdata
      libcmocka-dev python3-pytest python3-requests openssl   # tests (openssl signs test JWTs)
      python3-pytest-xdist   # the black-box suites run on several workers (make http)
      haproxy                # a real reverse proxy in front of crmblob (test_trusted_proxy)
      libpq-dev              # the PostgreSQL client library the server's store links (src/store/pg_conn.c)
      libgnutls28-dev        # TLS (--tls-cert): src/http/tls.c loads certificates with GnuTLS, libmicrohttpd's TLS library
      postgresql             # initdb/pg_ctl for the tests' throwaway clusters (scripts/pg-cluster.sh)
      prometheus             # promtool: the tests check the /metrics page with `promtool check metrics`
      chromium               # the page's tests drive a real headless browser (tests/browser, playwright-core)
      clang libclang-rt-14-dev)                               # fuzz targets
missing=()
for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "deps: installing ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
