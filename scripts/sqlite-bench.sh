#!/usr/bin/env bash
# Benchmarks DNR's SQLite enforcement against a plain table with a
# hand-written `WHERE tenant_id = ?` (1,000,000 rows over 1,000 tenants in a
# file database). Writes a markdown table to stdout and bench/sqlite.md.
#
# Usage: scripts/sqlite-bench.sh [ROWS] [TENANTS]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
export PATH="$HOME/.cargo/bin:$PATH"
ROWS=${1:-1000000}
TENANTS=${2:-1000}
# The extension in its own cargo invocation (see scripts/sqlite-test.sh).
cargo build --release -q -p dnr-sqlite-ext
cargo build --release -q -p dnr-sqlite --example bench
mkdir -p target/sqlite-bench
"$ROOT/target/release/examples/bench" target/sqlite-bench/bench.db "$ROWS" "$TENANTS"
