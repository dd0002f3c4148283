#!/usr/bin/env bash
# tenancy mode schema on Citus with schema-based sharding
# (citus.enable_schema_based_sharding), administered by a non-superuser
# owner: `dnr tenants create` makes each tenant's schema a distributed
# schema (its tables one shard each, on a worker) with the applied policy's
# tables and policies (Citus 13.2 cannot always distribute a schema created
# in the same transaction for a non-superuser: dnr.create_tenant then warns
# and the command distributes it in a new transaction); a schema created
# from SQL ends up distributed too; the application role reaches its
# tenant through dnr.use_tenant and sees only its rows and rules;
# migrations run in every tenant schema from SQL (dnr.migrate_tenants) and
# with `dnr migrate`, recorded once each; re-apply reaches every schema.
#
# Run by scripts/citus-test.sh (or alone). Exit 0 passed, 77 skipped.
set -euo pipefail
ROOT=${ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
# shellcheck source=scripts/citus-lib.sh
. "$ROOT/scripts/citus-lib.sh"
citus_attach || citus_start_cluster "$@"

fail() { printf 'FAIL: %s\n' "$*"; exit 1; }
ok() { printf 'ok: %s\n' "$*"; }
expect() { [ "$3" = "$2" ] && ok "$1" || fail "$1: expected [$2], got [$3]"; }
db=dnr_sm
q() { "$PGBIN/psql" -X -q -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$CITUS_COORDINATOR_PORT" -U "$1" -d "$db" -c "$2" 2>&1; }
schema_of() { echo "tenant_$(echo "$1" | tr -d -)"; }

# Roles are created at top level: Citus propagates (and tracks) them then.
for role in dnr_owner app; do
  [ "$(citus_psql 0 -Atc "SELECT count(*) FROM pg_roles WHERE rolname = '$role'")" = 1 ] \
    || citus_psql 0 -c "CREATE ROLE $role LOGIN NOSUPERUSER NOBYPASSRLS" >/dev/null
done
citus_create_db "$db" dnr_owner
citus_psql 0 -d postgres -c "ALTER DATABASE $db SET citus.enable_schema_based_sharding = on" >/dev/null

POLICY="
tenancy:
  mode: schema

entity Note:
  table: notes
  id: int pk
  body: text
  owner_id: uuid
  access:
    read: true
    create: owner_id = current_user
"
DNR=${DNR_BIN:-$ROOT/target/debug/dnr}
[ -x "$DNR" ] || (cd "$ROOT" && cargo build -q -p dnr-cli)
proj=$(mktemp -d)
mkdir -p "$proj/migrations"
printf '%s\n' "$POLICY" >"$proj/policies.dnr"
cat >"$proj/dnr.toml" <<TOML
[database]
backend = "postgres"
postgres_url = "postgresql://dnr_owner@127.0.0.1:$CITUS_COORDINATOR_PORT/$db"
tenant_mode = "schema"
postgres_pool_size = 2
TOML
dnr() { (cd "$proj" && "$DNR" "$@"); }

out=$(dnr apply 2>&1) || fail "dnr apply: $out"
ok "dnr apply (schema mode, no tenants yet) as the owner"
A=11111111-1111-4111-8111-111111111111
B=22222222-2222-4222-8222-222222222222
U=33333333-3333-4333-8333-333333333333
out=$(dnr tenants create "$A" "$B" --json 2>&1) || fail "dnr tenants create: $out"
sa=$(schema_of "$A")
sb=$(schema_of "$B")
expect "dnr tenants create: distributed schemas" "2" \
  "$(citus_psql 0 -d "$db" -Atc "SELECT count(*) FROM citus_schemas WHERE schema_name::text IN ('$sa', '$sb')")"
expect "each tenant's table is a single-shard distributed table" "2" \
  "$(citus_psql 0 -d "$db" -Atc "SELECT count(*) FROM citus_tables WHERE table_name::text IN ('$sa.notes', '$sb.notes') AND shard_count = 1")"
# From SQL: a warning, then the owner distributes in a new transaction.
D=55555555-5555-4555-8555-555555555555
sd=$(schema_of "$D")
# (Once Citus has synced the owner's role to the workers — the first
# `dnr tenants create` did — create_tenant distributes in its own
# transaction too.)
out=$(q dnr_owner "SELECT dnr.create_tenant('$D', 'from SQL')")
case "$out" in
  *"stays on the Citus coordinator"*"citus_schema_distribute('$sd')"*)
    ok "create_tenant from SQL warns, naming the command"
    out=$(q dnr_owner "SELECT citus_schema_distribute('$sd')") || fail "the owner distributes it: $out" ;;
  *"distributing the schema $sd"*) ok "create_tenant from SQL distributed the schema itself" ;;
  *) fail "create_tenant from SQL: $out" ;;
esac
expect "the schema created from SQL is distributed, with its table" "1|1" \
  "$(citus_psql 0 -d "$db" -Atc "SELECT count(*) FROM citus_schemas WHERE schema_name::text = '$sd'")|$(citus_psql 0 -d "$db" -Atc "SELECT count(*) FROM citus_tables WHERE table_name::text = '$sd.notes'")"
q dnr_owner "SELECT dnr.drop_tenant('$D')" >/dev/null

q dnr_owner "GRANT USAGE ON SCHEMA $sa, $sb TO app; GRANT SELECT, INSERT ON $sa.notes, $sb.notes TO app" >/dev/null
for t in "$A" "$B"; do
  "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$CITUS_COORDINATOR_PORT" -U app -d "$db" >/dev/null <<SQL
BEGIN;
SELECT dnr.set_context('$t', '$U') \g /dev/null
SELECT dnr.use_tenant('$t') \g /dev/null
INSERT INTO notes (id, body, owner_id) VALUES (1, 'note of $t', '$U');
COMMIT;
SQL
done
seen=$("$PGBIN/psql" -X -q -At -h 127.0.0.1 -p "$CITUS_COORDINATOR_PORT" -U app -d "$db" 2>&1 <<SQL
BEGIN;
SELECT dnr.set_context('$A', '$U') \g /dev/null
SELECT dnr.use_tenant('$A') \g /dev/null
SELECT string_agg(body, ',') FROM notes;
COMMIT;
SQL
)
expect "a tenant reads its schema's rows" "note of $A" "$seen"
# The schema fence (issue 27, point 2) on the worker's shard: tenant A's
# context reaches nothing of B's schema by a qualified name or search_path.
fenced=$("$PGBIN/psql" -X -q -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$CITUS_COORDINATOR_PORT" -U app -d "$db" 2>&1 <<SQL
BEGIN;
SELECT dnr.set_context('$A', '$U') \g /dev/null
SELECT dnr.use_tenant('$A') \g /dev/null
SELECT count(*) FROM $sb.notes;
SET LOCAL search_path = $sb;
SELECT count(*) FROM notes;
INSERT INTO $sb.notes (id, body, owner_id) VALUES (9, 'planted', '$U');
COMMIT;
SQL
) && fail "a write into another tenant's schema was accepted: $fenced"
case "$fenced" in
  0$'\n'0$'\n'*"row-level security"*) ok "the schema fence holds on Citus: a qualified name and search_path read 0 rows of B's schema, a write is refused" ;;
  *) fail "schema fence on Citus: $fenced" ;;
esac
refused=$("$PGBIN/psql" -X -q -At -h 127.0.0.1 -p "$CITUS_COORDINATOR_PORT" -U app -d "$db" 2>&1 <<SQL || true
BEGIN;
SELECT dnr.set_context('$A', '$U') \g /dev/null
SELECT dnr.use_tenant('$A') \g /dev/null
INSERT INTO notes (id, body, owner_id) VALUES (2, 'not mine', '$B');
COMMIT;
SQL
)
case "$refused" in *"row-level security"*) ok "the create rule holds on the worker" ;; *) fail "create rule: $refused" ;; esac

# migrations from SQL, recorded in the history
out=$(q dnr_owner "SELECT string_agg(status || coalesce(': ' || error, ''), ',' ORDER BY schema_name) FROM dnr.migrate_tenants(1, 'due', 'ALTER TABLE notes ADD COLUMN due date')")
expect "dnr.migrate_tenants applies in every tenant schema" "applied,applied" "$out"
# and with the dnr command: the same text as version 1 (same checksum)
printf '%s' 'ALTER TABLE notes ADD COLUMN due date' >"$proj/migrations/0001_due.sql"
printf 'ALTER TABLE notes ADD COLUMN prio int;\nCREATE INDEX notes_prio ON notes (prio);\n' >"$proj/migrations/0002_prio.sql"
out=$(dnr migrate --json 2>&1) || fail "dnr migrate on Citus: $out"
expect "dnr migrate: version 1 was already there, version 2 applied in both" "2" "$(grep -c '"versions":\[2\]' <<<"$out")"
C=44444444-4444-4444-8444-444444444444
out=$(dnr tenants create "$C" --json 2>&1) || fail "dnr tenants create on Citus: $out"
sc=$(schema_of "$C")
expect "a new tenant has both migrations, recorded once, in a distributed schema" "2|t|1" \
  "$(citus_psql 0 -d "$db" -Atc "SELECT count(*) FROM dnr.migrations WHERE store = '$sc'")|$(citus_psql 0 -d "$db" -Atc "SELECT EXISTS (SELECT 1 FROM citus_schemas WHERE schema_name::text = '$sc')")|$(citus_psql 0 -d "$db" -Atc "SELECT count(*) FROM citus_tables WHERE table_name::text = '$sc.notes'")"
expect "every schema has the migrated columns" "3" \
  "$(citus_psql 0 -d "$db" -Atc "SELECT count(*) FROM information_schema.columns WHERE table_name = 'notes' AND column_name = 'prio' AND table_schema LIKE 'tenant\_%'")"

# Re-apply with tenants in place: every tenant schema's (distributed)
# table gets the new rules.
printf '%s\n' "${POLICY/create: owner_id = current_user/create: true}" >"$proj/policies.dnr"
out=$(dnr apply 2>&1)
case "$out" in *"applied 1 entity"*"3 tenant schemas"*) ok "re-apply in every tenant schema" ;; *) fail "re-apply: $out" ;; esac
now=$("$PGBIN/psql" -X -q -At -h 127.0.0.1 -p "$CITUS_COORDINATOR_PORT" -U app -d "$db" 2>&1 <<SQL || true
BEGIN;
SELECT dnr.set_context('$B', '$U') \g /dev/null
SELECT dnr.use_tenant('$B') \g /dev/null
INSERT INTO notes (id, body, owner_id) VALUES (2, 'for someone else', '$A');
SELECT count(*) FROM notes;
COMMIT;
SQL
)
[ "$now" = 2 ] || fail "the re-applied create rule on the worker: $now"
ok "the re-applied rule holds on the worker"
rm -rf "$proj"
