#!/usr/bin/env bash
# Tests DNR on a real Citus cluster (a coordinator and two workers on
# loopback, PostgreSQL 15; scripts/citus-lib.sh).
#
# Builds/installs Citus when missing (scripts/citus-setup.sh) and the dnr
# extension, starts one cluster and runs every tests/citus/*.sh with bash,
# as scripts/pg-test.sh runs tests/pg/shell/*.sh: each gets a fresh database
# on every node with citus + dnr and the workers registered (CITUS_DB), and
# the cluster's variables (CITUS_WORK, CITUS_COORDINATOR_PORT,
# CITUS_WORKER_PORTS, ...), so that it can source scripts/citus-lib.sh and
# use citus_psql / citus_add_worker (citus_attach). A test passes when it
# exits 0; 77 means skipped. Output goes to target/citus-test/results/.
#
# Exit status: 0 no failure, 1 a test failed, 77 Citus cannot be had (its
# source is not in ../shared/vendor or $DNR_CITUS_VENDOR).
#
# Usage: scripts/citus-test.sh [--no-install] [NAME...]
#   --no-install  do not build/install the dnr extension first
#   NAME          run only these tests (file names without .sh)
# Environment: PG_CONFIG, DNR_PG_PROFILE (as scripts/pg-test.sh),
# DNR_CITUS_PORT (default 54340: coordinator; workers +1, +2),
# DNR_CITUS_KEEP=1 keeps the cluster directory.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/citus-lib.sh
. "$ROOT/scripts/citus-lib.sh"

install_flag=()
only=()
for arg in "$@"; do
  case "$arg" in
    --no-install) install_flag=(--no-install) ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) pg_die "unknown option $arg" ;;
    *) only+=("${arg%.sh}") ;;
  esac
done

TEST_DIR="$ROOT/tests/citus"
RESULTS_DIR="$ROOT/target/citus-test/results"

scripts=()
if [ ${#only[@]} -gt 0 ]; then
  for name in "${only[@]}"; do
    [ -f "$TEST_DIR/$name.sh" ] || pg_die "no such test: $TEST_DIR/$name.sh"
    scripts+=("$TEST_DIR/$name.sh")
  done
else
  for file in "$TEST_DIR"/*.sh; do [ -f "$file" ] && scripts+=("$file"); done
fi

status=0
(citus_ensure) || status=$?
if [ "$status" = 77 ]; then
  for file in "${scripts[@]}"; do
    printf 'skipped   %s: Citus cannot be had\n' "$(basename "$file" .sh)"
  done
  printf '0 passed, 0 failed, %d skipped\n' "${#scripts[@]}"
  exit 77
fi
[ "$status" = 0 ] || exit "$status"

# Signed context's PUBLIC TEST KEYS on every node (tests/citus/13).
export DNR_CITUS_CONF="$ROOT/tests/pg/fixtures/signed-keys.conf ${DNR_CITUS_CONF:-}"
citus_start_cluster "${install_flag[@]}"

rm -rf "$RESULTS_DIR"
mkdir -p "$RESULTS_DIR"

passed=0
failed=0
skipped=0
for file in "${scripts[@]}"; do
  name=$(basename "$file" .sh)
  db="t_$name"
  citus_create_db "$db"
  result="$RESULTS_DIR/$name.out"
  status=0
  ROOT="$ROOT" CITUS_DB="$db" bash "$file" >"$result" 2>&1 || status=$?
  if [ "$status" = 0 ]; then
    printf 'ok        %s\n' "$name"
    passed=$((passed + 1))
  elif [ "$status" = 77 ]; then
    printf 'skipped   %s: %s\n' "$name" "$(tail -n 1 "$result")"
    skipped=$((skipped + 1))
  else
    printf 'FAILED    %s\n' "$name"
    sed 's/^/  /' "$result"
    failed=$((failed + 1))
  fi
  citus_drop_db "$db"
done

if [ "$failed" -gt 0 ]; then
  printf 'server logs: %s/node*.log (set DNR_CITUS_KEEP=1 to keep them)\n' "$CITUS_WORK" >&2
fi
printf '%d passed, %d failed, %d skipped\n' "$passed" "$failed" "$skipped"
[ "$failed" -eq 0 ]
