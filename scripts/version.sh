#!/bin/sh
# version.sh — crmblob's version, as the build stamps it (crmblob --version,
# /health, the start-up line, the metrics' build info). In a git checkout of
# crmblob: `git describe` of the newest v* tag (v1.2.0-3-gabc1234, the "v"
# dropped), or without a tag the VERSION file's text plus the commit
# (0.19.0+gabc1234def); "-dirty" when the work tree has changes. Outside
# a checkout (a release tarball): the VERSION file, else $1 (the
# Makefile's default). Only [A-Za-z0-9.+~_-] is kept: the text becomes a
# C string.
cd "$(dirname "$0")/.." || exit 1
base=$(cat VERSION 2>/dev/null | head -n 1)
[ -n "$base" ] || base=${1:-0.0.0}
v=$base
top=$(git rev-parse --show-toplevel 2>/dev/null)
if [ -n "$top" ] && [ "$(cd "$top" && pwd -P)" = "$(pwd -P)" ]; then
    if d=$(git describe --tags --dirty --match 'v[0-9]*' 2>/dev/null); then
        v=${d#v}
    elif h=$(git rev-parse --short=10 HEAD 2>/dev/null); then
        git diff --quiet HEAD -- 2>/dev/null || h="$h-dirty"
        v="$base+g$h"
    fi
fi
printf '%s\n' "$v" | tr -cd 'A-Za-z0-9.+~_\n-'
