#!/usr/bin/env bash
# swagger-ui-deps.sh [--check] — Swagger UI's files for /api/docs.
#
# The files the build compiles in (swagger-ui-bundle.js, swagger-ui.css and
# its licence) are committed in web-vendor/swagger-ui/: vendored build
# inputs, so that `make` and `make run` need neither npm nor the registry
# and every build of a commit has the same bytes. They come from npm's
# swagger-ui-dist at the version pinned by web-vendor/package-lock.json:
#   scripts/swagger-ui-deps.sh          npm ci (when needed), then copy them
#   scripts/swagger-ui-deps.sh --check  npm ci (when needed), then fail when a
#                                       committed file differs (make test)
# npm ci runs with --ignore-scripts: swagger-ui-dist's dependency has a
# postinstall that reports installs, which a build has no business doing.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENDOR="$ROOT/web-vendor"
DIST="$VENDOR/node_modules/swagger-ui-dist"
OUT="$VENDOR/swagger-ui"
FILES=(swagger-ui-bundle.js swagger-ui.css)

check=0
[ "${1:-}" = "--check" ] && check=1

command -v npm >/dev/null 2>&1 || bash "$ROOT/scripts/client-deps.sh" # installs node and npm

stamp="$VENDOR/node_modules/.package-lock.json"
if [ ! -f "$DIST/package.json" ] || [ ! -f "$stamp" ] || [ "$VENDOR/package-lock.json" -nt "$stamp" ]; then
    echo "swagger-ui-deps: npm ci in web-vendor"
    (cd "$VENDOR" && npm ci --ignore-scripts --no-audit --no-fund)
    touch "$stamp"
fi

want="$(node -p "require('$VENDOR/package-lock.json').packages['node_modules/swagger-ui-dist'].version")"
have="$(node -p "require('$DIST/package.json').version")"
if [ "$want" != "$have" ]; then
    echo "swagger-ui-deps: node_modules has swagger-ui-dist $have, the lock file pins $want" >&2
    exit 1
fi

status=0
for f in "${FILES[@]}" LICENSE; do
    dst="$OUT/$f"
    [ "$f" = LICENSE ] && dst="$VENDOR/LICENSE.swagger-ui-dist"
    if [ $check -eq 1 ]; then
        if ! cmp -s "$DIST/$f" "$dst"; then
            echo "swagger-ui-deps: $dst is not swagger-ui-dist $want's $f (run scripts/swagger-ui-deps.sh)" >&2
            status=1
        fi
    else
        mkdir -p "$(dirname "$dst")"
        cp "$DIST/$f" "$dst"
    fi
done
[ $check -eq 1 ] && [ $status -eq 0 ] && echo "swagger-ui-deps: web-vendor matches swagger-ui-dist $want"
exit $status
