#!/usr/bin/env bash
# dnr.require_signed with the library in shared_preload_libraries, on a
# cluster of its own (the other tests' cluster loads the library per
# database or at first use). Here the settings are defined before a
# connection applies its startup options and stored defaults, so the order
# PostgreSQL applies them in matters:
#
# phase 1, require_signed per database (ALTER DATABASE locked SET ...):
#   - a fresh connection cannot SET dnr.tenant_id, nor read the keys;
#   - a tenant in the startup options (PGOPTIONS), applied before the
#     database's require_signed, refuses the connection (FATAL);
#   - so does a stored default of the role (ALTER ROLE app SET dnr.tenant_id),
#     applied before the database's settings; in a database without
#     require_signed it still applies, as before;
#   - set_context_signed works, set_tenant is refused;
# phase 2, require_signed in postgresql.conf (ALTER SYSTEM, restart):
#   - SET is refused, a tenant in the startup options is refused
#     (permission denied), a stored default is ignored with a warning.
#
# Run by scripts/pg-test.sh (environment: PGBIN, PGPORT of the main
# cluster, FIXTURES_DIR); this cluster listens on PGPORT + 2.
set -euo pipefail

: "${PGBIN:?}" "${FIXTURES_DIR:?}" "${PGPORT:?}"
ROOT=${ROOT:-$(cd "$(dirname "$0")/../../.." && pwd)}
export DNR_PG_PORT=$((PGPORT + 2))
# shellcheck source=scripts/pg-lib.sh
. "$ROOT/scripts/pg-lib.sh"
PGBIN=$("$PG_CONFIG" --bindir)

DNR_PG_CONF="$FIXTURES_DIR/signed-keys.conf"
DNR_PG_OPTIONS="-c shared_preload_libraries=dnr"
pg_start_cluster >/dev/null 2>&1 || { echo "FAILED: could not start a cluster with shared_preload_libraries=dnr"; exit 1; }

fail() { echo "FAILED: $*"; exit 1; }
# run ROLE DB SQL...: psql's output and errors, one -c per SQL
run() {
  local role=$1 db=$2 args=() sql
  shift 2
  for sql in "$@"; do args+=(-c "$sql"); done
  "$PGBIN/psql" -X -q -t -A -U "$role" -d "$db" "${args[@]}" 2>&1 || true
}
# expect WHAT PATTERN OUTPUT
expect() {
  if grep -qE -- "$2" <<<"$3"; then
    echo "ok: $1"
  else
    printf '%s\n' "$3"
    fail "$1: expected /$2/"
  fi
}
token=$(sed -n "s/^\\\\set valid_a '\\(.*\\)'\$/\\1/p" "$FIXTURES_DIR/signed-tokens.psql")
[ -n "$token" ] || fail "no token valid_a in the fixtures"
A=11111111-1111-1111-1111-111111111111
B=22222222-2222-2222-2222-222222222222

pg_psql -d postgres <<'SQL'
CREATE ROLE app LOGIN NOSUPERUSER NOBYPASSRLS;
CREATE DATABASE locked;
CREATE DATABASE open;
ALTER DATABASE locked SET dnr.require_signed = on;
SQL
pg_psql -d locked -c 'CREATE EXTENSION dnr'
pg_psql -d open -c 'CREATE EXTENSION dnr'
echo "phase 1: shared_preload_libraries = dnr, require_signed per database"

expect "the library is preloaded" '^dnr$' "$(run postgres postgres 'SHOW shared_preload_libraries')"
expect "require_signed is on in the locked database" '^on$' "$(run app locked 'SHOW dnr.require_signed')"
expect "a fresh connection cannot SET dnr.tenant_id" 'permission denied to set parameter "dnr.tenant_id"' \
  "$(run app locked "SET dnr.tenant_id = '$B'")"
expect "a fresh connection cannot read the keys" 'must be superuser or have privileges of pg_read_all_settings' \
  "$(run app locked 'SHOW dnr.signing_keys')"
expect "a tenant in the startup options refuses the connection" \
  'FATAL: +dnr.tenant_id was set when the connection started, and dnr.require_signed is on' \
  "$(PGOPTIONS="-c dnr.tenant_id=$B" run app locked 'SELECT 1')"
expect "roles in the startup options too" \
  'FATAL: +dnr.roles was set when the connection started' \
  "$(PGOPTIONS="-c dnr.roles=admin" run app locked 'SELECT 1')"
expect "a superuser may connect with them" "^$B\$" \
  "$(PGOPTIONS="-c dnr.tenant_id=$B" run postgres locked 'SELECT dnr.current_tenant()')"

run postgres postgres "ALTER ROLE app SET dnr.tenant_id = '$B'" >/dev/null
expect "a stored default of the role refuses the connection" \
  'FATAL: +dnr.tenant_id was set when the connection started' "$(run app locked 'SELECT 1')"
expect "where require_signed is off, the stored default applies as before" "^$B\$" \
  "$(run app open 'SELECT dnr.current_tenant()')"
run postgres postgres "ALTER ROLE app RESET dnr.tenant_id" >/dev/null

expect "set_context_signed sets the token's tenant" "^$A\$" \
  "$(run app locked 'BEGIN' "SELECT dnr.set_context_signed('$token')" 'SELECT dnr.current_tenant()' 'COMMIT')"
expect "set_tenant is refused" 'dnr.set_tenant is not allowed: dnr.require_signed is on' \
  "$(run app locked "SELECT dnr.set_tenant('$B')")"
expect "where require_signed is off, SET LOCAL works as before" "^$B\$" \
  "$(run app open 'BEGIN' "SET LOCAL dnr.tenant_id = '$B'" 'SELECT dnr.current_tenant()' 'COMMIT')"

echo "phase 2: require_signed in postgresql.conf (ALTER SYSTEM, restart)"
run postgres postgres 'ALTER SYSTEM SET dnr.require_signed = on' >/dev/null
as_pg "$PGBIN/pg_ctl" -D "$PG_WORK/data" -w -t 60 restart >/dev/null 2>&1 || fail "restart failed"
expect "require_signed is on everywhere" '^on$' "$(run app open 'SHOW dnr.require_signed')"
expect "SET dnr.tenant_id is refused" 'permission denied to set parameter "dnr.tenant_id"' \
  "$(run app open "SET dnr.tenant_id = '$B'")"
expect "a tenant in the startup options is refused" 'FATAL: +permission denied to set parameter "dnr.tenant_id"' \
  "$(PGOPTIONS="-c dnr.tenant_id=$B" run app open 'SELECT 1')"
run postgres postgres "ALTER ROLE app SET dnr.tenant_id = '$B'" >/dev/null
out=$(run app open "SELECT 'tenant:' || current_setting('dnr.tenant_id')")
expect "a stored default is ignored, with a warning" 'WARNING: +the stored default of dnr.tenant_id is ignored' "$out"
expect "and the session has no tenant" '^tenant:$' "$out"
run postgres postgres "ALTER ROLE app RESET dnr.tenant_id" >/dev/null
echo "ok: require_signed holds with shared_preload_libraries"
