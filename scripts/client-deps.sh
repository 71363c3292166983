#!/usr/bin/env bash
# Installs what tests/http/test_agent_client.py needs: Node.js and npm (the
# Debian 12 packages, only when `node` or `npm` is missing) and the official
# client @superoffice/webapi into tests/client/node_modules (`npm ci` from the
# committed package-lock.json, only when node_modules is missing or older than
# the lock file). Needs registry.npmjs.org (or the npm registry configured).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CLIENT="$ROOT/tests/client"

missing=()
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
if [ ${#missing[@]} -gt 0 ]; then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    echo "client-deps: installing ${missing[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

major="$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)"
if [ "$major" -lt 18 ]; then
    echo "client-deps: node $(node --version 2>/dev/null || echo '?') is too old; the client tests need Node 18 or later" >&2
    exit 1
fi

# npm ci writes node_modules/.package-lock.json: it is the stamp of the last install
stamp="$CLIENT/node_modules/.package-lock.json"
if [ ! -f "$CLIENT/node_modules/@superoffice/webapi/package.json" ] || [ ! -f "$stamp" ] \
        || [ "$CLIENT/package-lock.json" -nt "$stamp" ] || [ "$CLIENT/package.json" -nt "$stamp" ]; then
    echo "client-deps: npm ci in tests/client"
    (cd "$CLIENT" && npm ci --no-audit --no-fund)
    touch "$stamp"
fi
