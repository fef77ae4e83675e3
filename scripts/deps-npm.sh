#!/bin/sh
# deps-npm.sh - the browser-test tooling from the npm registry (playwright-core
# to drive Debian's chromium, @microsoft/app-manifest for its JSON schemas),
# pinned by tests/browser/package-lock.json. Installs only when missing.
set -eu
dir="$(cd "$(dirname "$0")/.." && pwd)/tests/browser"
if [ -f "$dir/node_modules/playwright-core/package.json" ] &&
   [ -f "$dir/node_modules/@microsoft/app-manifest/package.json" ] &&
   [ "$dir/node_modules/.package-lock.json" -nt "$dir/package-lock.json" ]; then
	exit 0
fi
echo "deps: npm ci in tests/browser"
cd "$dir" && npm ci --no-audit --no-fund --loglevel=error
