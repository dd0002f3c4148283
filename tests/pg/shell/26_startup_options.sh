#!/usr/bin/env bash
# Issue 27, point 1: dnr.require_signed (and the other superuser-only dnr
# settings) cannot be switched off by a connection's startup options
# (PGOPTIONS='-c dnr.require_signed=off -c dnr.tenant_id=...') when the
# library is loaded after the connection started: with
# session_preload_libraries (per database here) or at the first call of a
# DNR function. PostgreSQL would fall back to the compiled-in default
# (require_signed off) with a mere WARNING; DNR refuses the connection,
# naming shared_preload_libraries. The application role `app` must see no
# row of tenant A in any of these connections, and the unsigned setters
# stay refused.
#
# Run by scripts/pg-test.sh (DNR_TEST_DB: a fresh database with the
# extension; PGBIN; PGHOST/PGPORT of the cluster).
set -euo pipefail
: "${PGBIN:?}" "${DNR_TEST_DB:?}"
fail() { echo "FAILED: $*"; exit 1; }
# run ROLE DB SQL [PGOPTIONS]: psql's output and errors
run() {
  PGOPTIONS="${4:-}" "$PGBIN/psql" -X -q -t -A -v ON_ERROR_STOP=1 -U "$1" -d "$2" -c "$3" 2>&1 || true
}
expect() {
  if [ "$3" = "$2" ]; then echo "ok: $1"; else printf 'expected:\n%s\ngot:\n%s\n' "$2" "$3"; fail "$1"; fi
}
expect_match() {
  if grep -qE -- "$2" <<<"$3"; then echo "ok: $1"; else printf '%s\n' "$3"; fail "$1: expected /$2/"; fi
}
expect_no_match() {
  if grep -qE -- "$2" <<<"$3"; then printf '%s\n' "$3"; fail "$1: unexpected /$2/"; else echo "ok: $1"; fi
}

A=aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa
PRE=$DNR_TEST_DB          # session_preload_libraries = 'dnr' (per database)
LATE=${DNR_TEST_DB}_late  # no preload: the library loads at first use
cleanup() { "$PGBIN/psql" -X -q -d postgres -c "DROP DATABASE IF EXISTS $LATE WITH (FORCE)" >/dev/null 2>&1 || true; }
trap cleanup EXIT

run postgres postgres "CREATE DATABASE $LATE TEMPLATE dnr_template OWNER dnr_owner" >/dev/null
for db in "$PRE" "$LATE"; do
  out=$(run dnr_owner "$db" "CREATE TABLE notes (id int PRIMARY KEY, tenant_id uuid NOT NULL, body text);
    INSERT INTO notes VALUES (1, '$A', 'secret of A');
    SELECT dnr.enable_tenant_isolation('notes');
    GRANT SELECT ON notes TO app;")
  expect_match "$db: setup" "tenant isolation enabled" "$out"
  run postgres "$db" "ALTER DATABASE $db SET dnr.require_signed = on" >/dev/null
done
run postgres "$PRE" "ALTER DATABASE $PRE SET session_preload_libraries = 'dnr'" >/dev/null

# Without startup options: locked.
for db in "$PRE" "$LATE"; do
  out=$(run app "$db" "SELECT dnr.set_tenant('$A')")
  expect_match "$db: the unsigned setter is refused" "dnr.require_signed is on" "$out"
done

# The attack: require_signed off and a tenant in the startup options.
ATTACK="-c dnr.require_signed=off -c dnr.tenant_id=$A"
for db in "$PRE" "$LATE"; do
  out=$(run app "$db" "SELECT 'rows=' || count(*) FROM notes; SELECT 'require_signed=' || current_setting('dnr.require_signed')" "$ATTACK")
  expect_no_match "$db: no row of tenant A through startup options" "rows=1" "$out"
  expect_no_match "$db: require_signed stays on" "require_signed=off" "$out"
  expect_match "$db: the connection is refused, naming shared_preload_libraries" \
    'FATAL: +permission denied to set parameter "dnr.require_signed"' "$out"
  expect_match "$db: the hint names shared_preload_libraries" "shared_preload_libraries" "$out"
  out=$(run app "$db" "SELECT dnr.set_tenant('$A'); SELECT 'rows=' || count(*) FROM notes" "$ATTACK")
  expect_no_match "$db: no row of tenant A through the unsigned setter" "rows=1" "$out"
  # the other superuser-only settings likewise (an audience check switched off)
  out=$(run app "$db" "SELECT dnr.current_tenant(); SELECT 'audience=' || current_setting('dnr.token_audience')" "-c dnr.token_audience=")
  expect_match "$db: dnr.token_audience from the startup options is refused" "FATAL" "$out"
done

# A tenant alone in the startup options is dropped (require_signed on).
for db in "$PRE" "$LATE"; do
  out=$(run app "$db" "SELECT 'rows=' || count(*) FROM notes" "-c dnr.tenant_id=$A")
  expect_match "$db: a tenant from the startup options is dropped" "rows=0" "$out"
done

# A superuser's startup options are its own business.
out=$(run postgres "$PRE" "SHOW dnr.require_signed" "-c dnr.require_signed=off")
expect "a superuser may switch it off for its session" "off" "$out"
# require_signed off (per database reset): context in startup options works as before
run postgres postgres "ALTER DATABASE $LATE RESET dnr.require_signed" >/dev/null
out=$(run app "$LATE" "SELECT 'rows=' || count(*) FROM notes" "-c dnr.tenant_id=$A")
expect "without require_signed, the startup options may set the tenant" "rows=1" "$out"
