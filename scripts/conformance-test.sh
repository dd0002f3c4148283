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

if [ -f scripts/wasm-build.sh ]; then
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
"$ROOT/target/release/dnr-conformance" --seeds "$SEEDS" "$@"
