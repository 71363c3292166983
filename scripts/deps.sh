#!/usr/bin/env bash
# Installs the Debian 12 packages a task needs, only those missing, so that
# `make run`, `make test` and `make fuzz` work on a fresh machine; each target
# installs only its own groups:
#
#   deps.sh build      compilers and the -dev packages crmblob is built with (make, make run)
#   deps.sh runtime    the libraries the built programs load, no headers (the Docker image's run stage)
#   deps.sh test       what the unit and black-box tests use (make test)
#   deps.sh fuzz       clang and its libFuzzer runtime (make fuzz, make fuzz-smoke)
#   deps.sh            every group (.ci/run)
#   deps.sh --list GROUP...   prints the packages, one a line, installs nothing
#
# The benchmark's tools are scripts/bench-deps.sh's, the Node.js client's
# scripts/client-deps.sh's.
set -euo pipefail

BUILD=(build-essential pkg-config
       libmicrohttpd-dev libjansson-dev libsqlite3-dev libsodium-dev libexpat1-dev
       libssl-dev libzstd-dev tzdata
       libvips-dev libjpeg62-turbo-dev  # the image worker crmblob-img (libjpeg: its JPEG data check)
       libpq-dev                        # the PostgreSQL module crmblob-pg.so (src/store/pg_conn.c)
       libgnutls28-dev)                 # TLS (--tls-cert): src/http/tls.c loads certificates with GnuTLS, libmicrohttpd's TLS library
# What crmblob, crmblob-img and crmblob-pg.so load (readelf -d: NEEDED),
# by package; tests/http/test_deps.py checks that the list covers them.
RUNTIME=(libmicrohttpd12 libgnutls30 libjansson4 libsqlite3-0 libsodium23 libexpat1 libssl3
         libzstd1 libvips42 libjpeg62-turbo libglib2.0-0 libpq5
         tzdata)                        # SO-TimeZone's zones
TEST=(libcmocka-dev python3-pytest python3-requests
      openssl                # signs test JWTs, makes test TLS certificates
      python3-pytest-xdist   # the black-box suites run on several workers (make http)
      haproxy                # a real reverse proxy in front of crmblob (test_trusted_proxy)
      postgresql             # initdb/pg_ctl for the tests' throwaway clusters (scripts/pg-cluster.sh)
      prometheus             # promtool: the tests check the /metrics page with `promtool check metrics`
      chromium               # the page's tests drive a real headless browser (tests/browser, playwright-core)
      systemd                # systemd-analyze verify/security of dist/systemd/crmblob.service (test_systemd)
      man-db                 # man -l renders doc/crmblob.1 (test_install)
      python3-seccomp)       # the unit's system-call filters applied to a test server (test_hardening)
FUZZ=(clang libclang-rt-14-dev)  # libFuzzer targets (tests/fuzz)

group() {
    case "$1" in
    build) printf '%s\n' "${BUILD[@]}" ;;
    runtime) printf '%s\n' "${RUNTIME[@]}" ;;
    test) printf '%s\n' "${TEST[@]}" ;;
    fuzz) printf '%s\n' "${FUZZ[@]}" ;;
    *) echo "deps: unknown group '$1' (build, runtime, test, fuzz)" >&2; return 2 ;;
    esac
}

list=0
[ "${1:-}" = "--list" ] && { list=1; shift; }
[ $# -gt 0 ] || set -- build runtime test fuzz
pkgs=()
for g in "$@"; do
    mapfile -t more < <(group "$g") && [ ${#more[@]} -gt 0 ] || exit 2
    pkgs+=("${more[@]}")
done
if [ $list -eq 1 ]; then
    printf '%s\n' "${pkgs[@]}" | awk '!seen[$0]++'
    exit 0
fi
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "deps: installing ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
