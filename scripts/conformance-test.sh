#!/usr/bin/env bash
# Differential conformance across engines: the dnr-core evaluator vs the
# SQLite extension, the Rust DNR connection (unlocked and locked),
# PostgreSQL with the extension, PostgreSQL with the postgres-plain output,
# and the WASM package in Node; then, when Citus is installed or can be built
# (scripts/citus-setup.sh), a shorter run against a 3-node Citus cluster
# (scripts/citus-lib.sh).
# usage: scripts/conformance-test.sh [SEEDS [EXISTS_SEEDS]] [extra dnr-conformance args]
# SEEDS cases of one or two unrelated entities (default 300), EXISTS_SEEDS
# relationship cases (`exists` rules over two or three entities, default
# 100). Extra arguments (e.g. --replay FILE) skip the planted differences.
# Citus: DNR_CONFORMANCE_CITUS_SEEDS cases (default 300, of which about a
# half apply on Citus — see docs/citus.md; 0 = no Citus run)
# and DNR_CONFORMANCE_CITUS_EXISTS_SEEDS relationship cases (default 20,
# each counted as not applicable: Citus refuses `exists` rules); with extra
# arguments (a replay) Citus runs those instead. DNR_CONFORMANCE_CITUS_ONLY=1
# runs only the Citus part (SEEDS and EXISTS_SEEDS then size it: `just
# conformance-citus N`). The cluster listens on DNR_CONFORMANCE_CITUS_PORT
# and the next two (default: the first free of 54360, 54370, ...).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
export PATH="$HOME/.cargo/bin:$PATH"
SEEDS=${1:-${DNR_CONFORMANCE_SEEDS:-300}}
shift || true
EXISTS_SEEDS=${DNR_CONFORMANCE_EXISTS_SEEDS:-100}
if [ $# -gt 0 ] && [[ $1 =~ ^[0-9]+$ ]]; then
  EXISTS_SEEDS=$1
  shift
elif [ $# -gt 0 ]; then
  # Extra arguments name what to run (a replay, a seed range).
  EXISTS_SEEDS=0
fi
CITUS_ONLY=${DNR_CONFORMANCE_CITUS_ONLY:-0}
CITUS_SEEDS=${DNR_CONFORMANCE_CITUS_SEEDS:-300}
CITUS_EXISTS_SEEDS=${DNR_CONFORMANCE_CITUS_EXISTS_SEEDS:-20}
# The dnr extension is installed once, by the PostgreSQL part below.
CITUS_INSTALL=--no-install
if [ "$CITUS_ONLY" = 1 ]; then
  CITUS_SEEDS=$SEEDS
  CITUS_EXISTS_SEEDS=$EXISTS_SEEDS
fi

# The Citus engine: a coordinator and two workers of its own (in a subshell,
# so that citus-lib's EXIT trap stops only this cluster), an owner role that
# applies the policies and distributes the tables, and the application role
# every step runs as. Exit 77: Citus cannot be had.
citus_conformance() (
  # Other clusters may be up on the machine: the first base port from
  # 54360 (step 10) with nothing listening on it or the next two.
  DNR_CITUS_PORT=${DNR_CONFORMANCE_CITUS_PORT:-}
  if [ -z "$DNR_CITUS_PORT" ]; then
    local base port busy
    for base in $(seq 54360 10 54460); do
      busy=0
      for port in $base $((base + 1)) $((base + 2)); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then busy=1; fi
      done
      if [ "$busy" = 0 ]; then DNR_CITUS_PORT=$base; break; fi
    done
  fi
  CITUS_DB=dnr_conf_admin
  # shellcheck source=citus-lib.sh
  source scripts/citus-lib.sh
  citus_ensure >/dev/null || exit $?
  citus_start_cluster $CITUS_INSTALL || exit 1
  citus_psql 0 -c "SET client_min_messages = warning" \
    -c "CREATE ROLE dnr_conf_owner LOGIN NOSUPERUSER NOBYPASSRLS" \
    -c "CREATE ROLE dnr_conf_app LOGIN NOSUPERUSER NOBYPASSRLS" >/dev/null || exit 1
  # (set -e does not stop a function called with ||: each step checks.)
  citus_create_db dnr_conf_citus dnr_conf_owner || exit 1
  local args=(--seeds "$CITUS_SEEDS" --exists-seeds "$CITUS_EXISTS_SEEDS")
  [ $# -gt 0 ] && args=("$@")
  local started=$SECONDS status=0
  env -u DNR_SQLITE_LIB -u DNR_PG_HOST -u DNR_PG_PORT -u DNR_NODE_RUNNER \
    DNR_CITUS_HOST=127.0.0.1 DNR_CITUS_PORT="$CITUS_COORDINATOR_PORT" \
    "$ROOT/target/release/dnr-conformance" --engine citus "${args[@]}" || status=$?
  echo "citus conformance: $((SECONDS - started)) s"
  exit $status
)

if [ "$CITUS_ONLY" = 1 ]; then
  cargo build -q --release -p dnr-conformance
  CITUS_INSTALL=""
  status=0
  citus_conformance "$@" || status=$?
  [ "$status" = 77 ] && echo "==> citus: skipped (Citus cannot be had; see scripts/citus-setup.sh)"
  exit $status
fi

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
# The generators, and the shrinker against an in-process planted difference.
cargo test -q --release -p dnr-conformance || status=$?
"$ROOT/target/release/dnr-conformance" --seeds "$SEEDS" --exists-seeds "$EXISTS_SEEDS" "$@" || status=$?

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

  # A relationship bug: the related entity's tenant fence dropped from
  # every `exists` in the SQLite extension's compiled SQL. It must be
  # caught, shrunk to a small case (one step, a few rows and rules, an
  # `exists` left in the policy), and the shrunk case must agree once the
  # plant is gone.
  echo "==> planted difference: the related entity's fence dropped from exists in the sqlite-ext SQL"
  planted_log=$(mktemp)
  rm -rf "$ROOT/tests/conformance/failures"
  if DNR_CONFORMANCE_PLANT=related-fence "$ROOT/target/release/dnr-conformance" \
      --seeds 0 --exists-seeds 40 --engine sqlite-ext --shrink-limit 1 >"$planted_log" 2>&1; then
    echo "FAILED: the harness did not notice the dropped related fence"
    status=1
  elif ! grep -q "DISAGREEMENT (sqlite-ext), shrunk to" "$planted_log"; then
    cat "$planted_log"
    status=1
  else
    shrunk=$(grep -m1 "^shrunk:" "$planted_log")
    read -r rows rules steps < <(sed -E 's/^shrunk: [0-9]+ entities, ([0-9]+) seed rows, ([0-9]+) rules, ([0-9]+) steps$/\1 \2 \3/' <<<"$shrunk")
    saved=$(ls "$ROOT"/tests/conformance/failures/exists-seed-*-sqlite-ext.json | head -n1)
    caught=$(tail -n1 "$planted_log" | sed -E 's/.* ([0-9]+) failed$/\1/')
    if [ "$steps" -gt 1 ] || [ "$rows" -gt 3 ] || [ "$rules" -gt 4 ] || ! grep -q '"exists' "$saved"; then
      echo "FAILED: the planted difference was not shrunk to a small exists case ($shrunk)"
      sed -n '/^DISAGREEMENT/,/^replay/p' "$planted_log" | head -n 60
      status=1
    elif ! "$ROOT/target/release/dnr-conformance" --replay "$saved" --engine sqlite-ext >/dev/null 2>&1; then
      echo "FAILED: the shrunk case disagrees without the plant too: $saved"
      status=1
    else
      grep -m1 -A4 "first difference" "$planted_log"
      echo "planted difference caught: $caught of 40 relationship cases disagreed; the first $shrunk"
    fi
  fi
  rm -f "$planted_log"
  rm -rf "$ROOT/tests/conformance/failures"
fi
# Citus last: the planted runs above clear tests/conformance/failures/.
if [ "$CITUS_SEEDS" != 0 ] || [ $# -gt 0 ]; then
  echo "==> Citus: $CITUS_SEEDS cases ($CITUS_EXISTS_SEEDS relationship cases not applicable)"
  citus_status=0
  citus_conformance "$@" || citus_status=$?
  if [ "$citus_status" = 77 ]; then
    echo "==> citus: skipped (Citus cannot be had; see scripts/citus-setup.sh)"
  elif [ "$citus_status" != 0 ]; then
    status=$citus_status
  fi
fi

exit $status
