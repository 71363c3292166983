#!/usr/bin/env bash
# Installs what tests/http/test_page_browser.py needs: Debian's chromium
# (scripts/deps.sh), Node.js (scripts/client-deps.sh installs it) and
# playwright-core into tests/browser/node_modules (`npm ci` from the
# committed package-lock.json, only when node_modules is missing or older
# than the lock file). playwright-core is the driver alone: it downloads no
# browser; the tests launch /usr/bin/chromium. Needs registry.npmjs.org.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIR="$ROOT/tests/browser"

command -v chromium >/dev/null 2>&1 || bash "$ROOT/scripts/deps.sh"
command -v node >/dev/null 2>&1 || bash "$ROOT/scripts/client-deps.sh"

stamp="$DIR/node_modules/.package-lock.json"
if [ ! -f "$DIR/node_modules/playwright-core/package.json" ] || [ ! -f "$stamp" ] \
        || [ "$DIR/package-lock.json" -nt "$stamp" ] || [ "$DIR/package.json" -nt "$stamp" ]; then
    echo "page-deps: npm ci in tests/browser"
    (cd "$DIR" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund)
    touch "$stamp"
fi
