#!/usr/bin/env bash
# Issue 27, point 7: DNR's registry locks are taken only inside DNR's own
# operations, by roles that may run them, and a wait that times out names
# the holder. The application role (no privileges) holding
# dnr._registry('apply_schemas', '{}') or dnr.lock_migrations('tenant_<A>')
# in an open transaction no longer stalls the owner's create_tenant or
# migrate_tenants; between owners, the waiting one's error names the
# process and role that hold the lock.
#
# Run by scripts/pg-test.sh (DNR_TEST_DB, PGBIN).
set -euo pipefail
: "${PGBIN:?}" "${DNR_TEST_DB:?}"
fail() { echo "FAILED: $*"; exit 1; }
run() {
  "$PGBIN/psql" -X -q -t -A -v ON_ERROR_STOP=1 -U "$1" -d "$2" -c "$3" 2>&1 || true
}
expect_match() {
  if grep -qE -- "$2" <<<"$3"; then echo "ok: $1"; else printf '%s\n' "$3"; fail "$1: expected /$2/"; fi
}
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
# hold ROLE SQL: runs SQL in an open transaction for a few seconds, in the background
hold() {
  "$PGBIN/psql" -X -q -U "$1" -d "$db" -c "BEGIN; $2; SELECT pg_sleep(6); COMMIT" >/dev/null 2>&1 &
  pids+=($!)
  sleep 1.5
}

db=$DNR_TEST_DB
A=aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa
SA=tenant_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa
POLICY="tenancy:
  mode: schema

entity Note:
  table: notes
  id: int pk
  body: text
  access:
    read: true"

out=$(run dnr_owner "$db" "SELECT dnr.create_tenant('$A', 'A'); SELECT dnr.apply(\$p\$$POLICY\$p\$)")
expect_match "setup: schema-mode policy in tenant A" "in 1 tenant schema" "$out"

# The application role holds apply_schemas: the owner still creates a tenant.
hold app "SELECT dnr._registry('apply_schemas', '{}')"
out=$(run dnr_owner "$db" "SET lock_timeout = '1s'; SELECT dnr.create_tenant('bbbbbbbb-bbbb-bbbb-bbbb-bbbbbbbbbbbb', 'B')")
expect_match "the application role's apply_schemas does not block create_tenant" "^tenant_bbbb" "$out"

# The application role cannot lock a tenant's migrations at all.
out=$(run app "$db" "SELECT dnr.lock_migrations('$SA')")
expect_match "lock_migrations is refused to the application role" "permission denied for schema $SA" "$out"
hold app "SELECT dnr.lock_migrations('$SA')"
out=$(run dnr_owner "$db" "SET lock_timeout = '1s'; SELECT tenant_id, status FROM dnr.migrate_tenants(1, 'add', 'ALTER TABLE notes ADD COLUMN extra int')")
expect_match "migrate_tenants is not blocked by the application role" "^$A\|applied$" "$out"
# nor through the old advisory lock's key
hold app "SELECT pg_advisory_xact_lock(hashtextextended('dnr:migrate:' || '$SA', 0))"
out=$(run dnr_owner "$db" "SET lock_timeout = '1s'; SELECT tenant_id, status FROM dnr.migrate_tenants(2, 'add2', 'ALTER TABLE notes ADD COLUMN extra2 int')")
expect_match "migrate_tenants ignores advisory locks" "^$A\|applied$" "$out"
wait 2>/dev/null || true
pids=()

# Between owners, a lock timeout names the holder.
hold dnr_owner "SELECT dnr.lock_migrations('$SA')"
out=$(run dnr_owner "$db" "SET lock_timeout = '500ms'; SELECT dnr.lock_migrations('$SA')")
expect_match "a migration lock timeout names the holder" \
  "the migration history of schema $SA is locked by process [0-9]+ \(role dnr_owner\)" "$out"
hold dnr_owner "SELECT dnr.create_tenant('cccccccc-cccc-cccc-cccc-cccccccccccc', 'C')"
out=$(run dnr_owner "$db" "SET lock_timeout = '500ms'; SELECT dnr.apply(\$p\$$POLICY\$p\$)")
expect_match "a tenant registry lock timeout names the holder" \
  "the tenant registry is locked by process [0-9]+ \(role dnr_owner\)" "$out"
