#!/usr/bin/env bash
# Issue 27, point 8: a per-role dnr.require_signed (ALTER ROLE app IN
# DATABASE ... SET dnr.require_signed = on) follows SET ROLE. An
# authenticator login role (for which require_signed is off) that runs
# SET ROLE app — the pattern behind poolers and PostgREST-style servers —
# is as locked as a login as app: the unsigned setters, SET and set_config
# of the context are refused, a signed token still works.
#
# Run by scripts/pg-test.sh (DNR_TEST_DB, PGBIN, FIXTURES_DIR).
set -euo pipefail
: "${PGBIN:?}" "${DNR_TEST_DB:?}" "${FIXTURES_DIR:?}"
fail() { echo "FAILED: $*"; exit 1; }
run() {
  "$PGBIN/psql" -X -q -t -A -v ON_ERROR_STOP=1 -U "$1" -d "$2" -c "$3" 2>&1 || true
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

db=$DNR_TEST_DB
T1=00000000-0000-0000-0000-000000000001
T2=00000000-0000-0000-0000-000000000002
TOKEN1=$(awk -F, '$1 == 1 { print $3 }' "$FIXTURES_DIR/signed-tenants.csv")
[ -n "$TOKEN1" ] || fail "no token for tenant 1 in the fixtures"
cleanup() {
  "$PGBIN/psql" -X -q -d "$db" -c "DROP OWNED BY dnr_authenticator" >/dev/null 2>&1 || true
  "$PGBIN/psql" -X -q -d postgres -c "DROP ROLE IF EXISTS dnr_authenticator" >/dev/null 2>&1 || true
}
trap cleanup EXIT

out=$(run postgres "$db" "CREATE ROLE dnr_authenticator LOGIN NOINHERIT NOSUPERUSER NOBYPASSRLS;
  GRANT app TO dnr_authenticator;
  ALTER ROLE app IN DATABASE $db SET dnr.require_signed = on;
  SET ROLE dnr_owner;
  CREATE TABLE items (id int PRIMARY KEY, tenant_id uuid NOT NULL);
  INSERT INTO items VALUES (1, '$T1'), (2, '$T2'), (3, '$T2');
  SELECT dnr.enable_tenant_isolation('items');
  GRANT SELECT ON items TO app;")
expect_match "setup" "tenant isolation enabled" "$out"

# Logged in as app: locked (PostgreSQL applies app's stored default).
out=$(run app "$db" "SELECT dnr.set_tenant('$T2')")
expect_match "app's own login is locked" "dnr.require_signed is on" "$out"

# The authenticator, SET ROLE app: locked the same way.
for attempt in \
  "SELECT dnr.set_tenant('$T2')" \
  "SELECT dnr.set_context('$T2')" \
  "SET dnr.tenant_id = '$T2'" \
  "SELECT set_config('dnr.tenant_id', '$T2', false)" \
  "SELECT set_config('dnr.tenant_id', '$T2', true)"; do
  out=$(run dnr_authenticator "$db" "SET ROLE app; $attempt; SELECT 'rows=' || count(*) FROM items")
  expect_no_match "after SET ROLE app, no row of tenant 2 through: $attempt" "rows=2" "$out"
  expect_match "after SET ROLE app, refused: $attempt" "require_signed is on|is set only by dnr.set_context_signed" "$out"
done
# SET SESSION AUTHORIZATION is for superusers only; SET ROLE inside a
# transaction likewise
out=$(run dnr_authenticator "$db" "BEGIN; SET LOCAL ROLE app; SELECT dnr.set_tenant('$T2'); SELECT 'rows=' || count(*) FROM items; COMMIT")
expect_no_match "SET LOCAL ROLE app: no row of tenant 2" "rows=2" "$out"

# A signed token still sets the context after SET ROLE app.
out=$(run dnr_authenticator "$db" "SET ROLE app; BEGIN; SELECT dnr.set_context_signed('$TOKEN1'); SELECT 'rows=' || count(*) FROM items; COMMIT")
expect_match "a signed token works after SET ROLE app" "rows=1" "$out"

# The authenticator itself (require_signed off for it) keeps the unsigned setters.
out=$(run dnr_authenticator "$db" "SELECT dnr.set_tenant('$T2'); SELECT 'tenant=' || dnr.current_tenant()")
expect "the authenticator's own role is not locked" "tenant=$T2" "$(grep tenant= <<<"$out")"
