#!/usr/bin/env bash
# Differential conformance across engines: the dnr-core evaluator vs the
# SQLite extension, PostgreSQL with the extension, PostgreSQL with the
# postgres-plain output, and the WASM package in Node.
# usage: scripts/conformance-test.sh [SEEDS] [extra dnr-conformance args]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
export PATH="$HOME/.cargo/bin:$PATH"
SEEDS=${1:-${DNR_CONFORMANCE_SEEDS:-300}}
shift || true

echo "==> building the SQLite extension"
cargo build -q --release -p dnr-sqlite-ext
export DNR_SQLITE_LIB="$ROOT/target/release/libdnr.so"

if [ -f scripts/wasm-build.sh ] && [ "${DNR_SKIP_WASM:-0}" != 1 ]; then
  echo "==> building the WASM package"
  bash scripts/wasm-build.sh >/dev/null
  export DNR_NODE_RUNNER="$ROOT/tests/conformance/node-runner.mjs"
fi

# shellcheck source=pg-lib.sh
source scripts/pg-lib.sh
pg_ensure_tools
pg_install_extension >/dev/null
pg_start_cluster
pg_psql -d postgres <<'SQL'
CREATE ROLE dnr_conf_app LOGIN NOSUPERUSER NOBYPASSRLS;
CREATE DATABASE dnr_conf_ext;
CREATE DATABASE dnr_conf_plain;
\c dnr_conf_ext
CREATE EXTENSION dnr;
SQL
export DNR_PG_HOST="$PGHOST" DNR_PG_PORT="$PGPORT"

cargo build -q --release -p dnr-conformance
status=0
"$ROOT/target/release/dnr-conformance" --seeds "$SEEDS" "$@" || status=$?

# The harness must be able to fail: plant a difference in one engine (NULL
# forbid rules deny in the postgres-plain SQL) and expect it to be caught.
if [ $# -eq 0 ] && [ "${DNR_CONFORMANCE_PLANT:-}" = "" ]; then
  echo "==> planted difference: NULL handling flipped in the postgres-plain SQL"
  planted_log=$(mktemp)
  if DNR_CONFORMANCE_PLANT=null-forbid "$ROOT/target/release/dnr-conformance" --seeds 100 >"$planted_log" 2>&1; then
    echo "FAILED: the harness did not notice the planted difference"
    status=1
  elif grep -q "DISAGREEMENT (postgres-plain)" "$planted_log"; then
    grep -m1 -A3 "first difference" "$planted_log"
    caught=$(tail -n1 "$planted_log" | sed -E 's/.* ([0-9]+) failed$/\1/')
    echo "planted difference caught: $caught of 100 generated cases disagreed"
  else
    cat "$planted_log"
    status=1
  fi
  rm -f "$planted_log"
  rm -rf "$ROOT/tests/conformance/failures"
fi
exit $status
