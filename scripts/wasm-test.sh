#!/usr/bin/env bash
# The WASM package's tests: installs what is missing (wasm target, the
# matching wasm-bindgen-cli, clang, chromium, the test packages), builds the
# package, then runs the Node tests and the headless-Chromium OPFS test with
# node's test runner. Exits non-zero on any failure.
#
#   DNR_SKIP_BROWSER=1  skip the Chromium test
#   DNR_WASM_SKIP_BUILD=1  test the package already in dnr-wasm/pkg
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/wasm-lib.sh

wasm_ensure_test_tools
if [ "${DNR_WASM_SKIP_BUILD:-0}" != 1 ]; then
  bash scripts/wasm-build.sh
fi
if [ ! -f dnr-wasm/pkg/dnr_wasm_bg.wasm ]; then
  echo "dnr-wasm/pkg is not built: run scripts/wasm-build.sh" >&2
  exit 1
fi

# Installed after the build: the tests import the package through
# node_modules/dnr-wasm, a link to dnr-wasm/pkg.
wasm_npm_ci tests/wasm

# A small app against the package's declarations, as a user's strict
# ES2022 project without skipLibCheck compiles it.
wasm_log "tsc --strict -p tests/wasm/types"
tests/wasm/node_modules/.bin/tsc -p tests/wasm/types
tests/wasm/node_modules/.bin/tsc -p tests/wasm/types/tsconfig.orm.json

suites=(tests/wasm/node/)
if [ "${DNR_SKIP_BROWSER:-0}" != 1 ]; then
  suites+=(tests/wasm/browser/)
fi
wasm_log "node --test ${suites[*]}"
cd tests/wasm
# --preserve-symlinks: node_modules/dnr-wasm is a link to dnr-wasm/pkg, and
# the package's kysely.js imports `kysely` from the app's node_modules, as
# it does when installed from the registry.
exec node --preserve-symlinks --test --test-concurrency=1 "${suites[@]/#tests\/wasm\//}"
