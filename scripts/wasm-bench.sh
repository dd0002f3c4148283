#!/usr/bin/env bash
# Prints the WASM package's figures next to the native extension's
# (scripts/wasm-bench.mjs). Builds the package and the extension first, and
# installs better-sqlite3 (compiled from source against the local Node
# headers: its prebuilt binaries cannot be downloaded here).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/wasm-lib.sh

wasm_ensure_test_tools
[ "${DNR_WASM_SKIP_BUILD:-0}" = 1 ] || bash scripts/wasm-build.sh
if [ ! -f target/release/libdnr.so ]; then
  wasm_log "cargo build --release -p dnr-sqlite-ext"
  cargo build --release -p dnr-sqlite-ext
fi
nodedir=$(dirname "$(dirname "$(command -v node)")")
if [ -d "$nodedir/include/node" ]; then
  export npm_config_nodedir=$nodedir
fi
wasm_npm_ci tests/wasm/bench
node scripts/wasm-bench.mjs
