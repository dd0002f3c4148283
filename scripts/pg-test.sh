#!/usr/bin/env bash
# Tests `CREATE EXTENSION dnr` on a real PostgreSQL 15.
#
# Builds and installs dnr-pgext into the machine's PostgreSQL, starts a
# throwaway cluster (as the `postgres` OS user when run as root), creates the
# roles the tests use and runs every tests/pg/sql/*.sql script with psql,
# pg_regress style: the echoed script and its output must equal
# tests/pg/expected/<name>.out. Each script gets a fresh database.
# tests/pg/shell/*.sh are tests that need more than one psql (pgbouncer):
# each runs with bash against its own fresh database (DNR_TEST_DB) and
# passes when it exits 0; exit 77 means skipped (a tool is missing).
#
# The cluster's postgresql.conf gets tests/pg/fixtures/signed-keys.conf:
# PUBLIC TEST KEYS for signed context, whose tokens the tests take from the
# fixtures tests/pg/fixtures/signed_tokens.py writes (checked here with
# --check when python3 is installed).
#
# Roles (cluster-wide):
#   dnr_owner  owns the tables and applies policies (LOGIN, no superuser,
#              no BYPASSRLS); granted nothing on DNR's registries
#   app        the application: LOGIN, no superuser, no BYPASSRLS, owns
#              nothing; gets only table privileges
#
# Usage: scripts/pg-test.sh [--accept] [--no-install] [NAME...]
#   --accept      write the actual output to tests/pg/expected/ (then review it!)
#   --no-install  do not build/install the extension first
#   NAME          run only these scripts (file names without .sql)
# Environment: PG_CONFIG (default /usr/bin/pg_config), DNR_PG_PROFILE
# (release|debug), DNR_PG_PORT (default 54329), DNR_PG_KEEP=1 keeps the
# cluster directory.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/pg-lib.sh
. "$ROOT/scripts/pg-lib.sh"

accept=0
install=1
only=()
for arg in "$@"; do
  case "$arg" in
    --accept) accept=1 ;;
    --no-install) install=0 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) pg_die "unknown option $arg" ;;
    *) only+=("${arg%.sql}") ;;
  esac
done

SQL_DIR="$ROOT/tests/pg/sql"
SHELL_DIR="$ROOT/tests/pg/shell"
FIXTURES_DIR="$ROOT/tests/pg/fixtures"
EXPECTED_DIR="$ROOT/tests/pg/expected"
RESULTS_DIR="$ROOT/target/pg-test/results"

if command -v python3 >/dev/null 2>&1; then
  python3 "$FIXTURES_DIR/signed_tokens.py" --check || pg_die "the signed-context fixtures are stale"
fi

pg_ensure_tools
[ "$install" = 1 ] && pg_install_extension
DNR_PG_CONF="$FIXTURES_DIR/signed-keys.conf ${DNR_PG_CONF:-}"
pg_start_cluster

rm -rf "$RESULTS_DIR"
mkdir -p "$RESULTS_DIR" "$EXPECTED_DIR"

pg_log "creating roles and the template database"
pg_psql -d postgres <<'SQL'
CREATE ROLE dnr_owner LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEROLE;
CREATE ROLE app LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEROLE NOCREATEDB;
CREATE DATABASE dnr_template OWNER dnr_owner;
SQL
pg_psql -d dnr_template <<'SQL'
CREATE EXTENSION dnr;
SQL

scripts=()
if [ ${#only[@]} -gt 0 ]; then
  for name in "${only[@]}"; do
    if [ -f "$SQL_DIR/$name.sql" ]; then
      scripts+=("$SQL_DIR/$name.sql")
    elif [ -f "$SHELL_DIR/$name.sh" ]; then
      scripts+=("$SHELL_DIR/$name.sh")
    else
      pg_die "no such test: $SQL_DIR/$name.sql or $SHELL_DIR/$name.sh"
    fi
  done
else
  for file in "$SQL_DIR"/*.sql "$SHELL_DIR"/*.sh; do [ -f "$file" ] && scripts+=("$file"); done
fi

passed=0
failed=0
skipped=0
failures=()
for file in "${scripts[@]}"; do
  name=$(basename "$file")
  name=${name%.*}
  db="t_$name"
  pg_psql -d postgres -c "CREATE DATABASE \"$db\" TEMPLATE dnr_template OWNER dnr_owner"
  result="$RESULTS_DIR/$name.out"
  expected="$EXPECTED_DIR/$name.out"
  if [ "${file%.sh}" != "$file" ]; then
    status=0
    ROOT="$ROOT" PGBIN="$PGBIN" PG_WORK="$PG_WORK" DNR_TEST_DB="$db" FIXTURES_DIR="$FIXTURES_DIR" \
      bash "$file" >"$result" 2>&1 || status=$?
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
      failures+=("$name")
    fi
    pg_psql -d postgres -c "DROP DATABASE \"$db\" WITH (FORCE)"
    continue
  fi
  # As pg_regress: input on stdin (so errors carry no file name), every
  # statement echoed (-a), no psqlrc (-X), errors do not stop the script.
  (cd "$SQL_DIR" && PGTZ=UTC PGDATESTYLE=ISO "$PGBIN/psql" -X -a -q -d "$db" \
      -v SHOW_CONTEXT=never <"$file" >"$result" 2>&1) || true
  if [ "$accept" = 1 ]; then
    cp "$result" "$expected"
    printf 'accepted  %s\n' "$name"
    passed=$((passed + 1))
  elif [ -f "$expected" ] && diff -u "$expected" "$result" >"$RESULTS_DIR/$name.diff"; then
    printf 'ok        %s\n' "$name"
    passed=$((passed + 1))
  else
    printf 'FAILED    %s\n' "$name"
    if [ -f "$expected" ]; then
      cat "$RESULTS_DIR/$name.diff"
    else
      printf '  no expected output %s (run with --accept, then review it)\n' "$expected"
    fi
    failed=$((failed + 1))
    failures+=("$name")
  fi
  pg_psql -d postgres -c "DROP DATABASE \"$db\""
done

if [ "$failed" -gt 0 ]; then
  printf 'server log: %s (set DNR_PG_KEEP=1 to keep it)\n' "$PG_WORK/server.log" >&2
fi
if [ "$skipped" -gt 0 ]; then
  printf '%d passed, %d failed, %d skipped\n' "$passed" "$failed" "$skipped"
else
  printf '%d passed, %d failed\n' "$passed" "$failed"
fi
[ "$failed" -eq 0 ]
