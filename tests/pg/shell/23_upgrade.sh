#!/usr/bin/env bash
# ALTER EXTENSION dnr UPDATE TO '0.2.0' on databases that run 0.1.0 with
# applied policies, tenant schemas and rows (one row_level, one schema
# mode), then everything keeps working on the 0.2.0 library: isolation as
# the application role, re-applying, new tenants, migration history and the
# owner without the GRANTs 0.1.0 needed. Finally the updated databases'
# extension objects (functions with their bodies, settings, privileges;
# tables; the view; membership) equal those of a fresh CREATE EXTENSION dnr.
#
# Run by scripts/pg-test.sh against its cluster (PGHOST, PGPORT, PGUSER
# exported; roles dnr_owner and app; DNR_TEST_DB has 0.2.0 from the template).
set -euo pipefail

: "${PGBIN:?}" "${DNR_TEST_DB:?}"
fail() { echo "FAILED: $*"; exit 1; }
# run ROLE DB SQL: psql's output and errors (unaligned, tuples only)
run() {
  "$PGBIN/psql" -X -q -t -A -v ON_ERROR_STOP=1 -U "$1" -d "$2" -c "$3" 2>&1 || true
}
# expect WHAT EXPECTED OUTPUT: OUTPUT must equal EXPECTED
expect() {
  if [ "$3" = "$2" ]; then
    echo "ok: $1"
  else
    printf 'expected:\n%s\ngot:\n%s\n' "$2" "$3"
    fail "$1"
  fi
}
# expect_match WHAT PATTERN OUTPUT
expect_match() {
  if grep -qE -- "$2" <<<"$3"; then
    echo "ok: $1"
  else
    printf '%s\n' "$3"
    fail "$1: expected /$2/"
  fi
}
A=aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa
B=bbbbbbbb-bbbb-bbbb-bbbb-bbbbbbbbbbbb
C=cccccccc-cccc-cccc-cccc-cccccccccccc
ALICE=00000000-0000-0000-0000-0000000a11ce
ROW=up_row_level
SCH=up_schema
CLEAN=up_fresh

cleanup() {
  for db in "$ROW" "$SCH" "$CLEAN"; do
    "$PGBIN/psql" -X -q -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
  done
}
trap cleanup EXIT

GRANTS_010="GRANT SELECT, INSERT, UPDATE, DELETE ON dnr.applied, dnr.managed_tables, dnr.tenants TO dnr_owner; GRANT SELECT ON dnr.policies TO dnr_owner;"
REVOKES="REVOKE ALL ON dnr.applied, dnr.managed_tables, dnr.tenants, dnr.policies FROM dnr_owner;"
for db in "$ROW" "$SCH"; do
  run postgres postgres "CREATE DATABASE $db OWNER dnr_owner" >/dev/null
  out=$(run postgres "$db" "CREATE EXTENSION dnr VERSION '0.1.0'; $GRANTS_010 SELECT extversion FROM pg_extension WHERE extname = 'dnr'")
  expect "$db: CREATE EXTENSION dnr VERSION '0.1.0'" "0.1.0" "$out"
done

# --- 0.1.0: a row_level policy with rows of two tenants ---------------------
TASKS_POLICY="
tenancy:
  mode: row_level
entity Task:
  table: tasks
  id: int pk
  owner_id: uuid
  title: text
  access:
    read: true
    create: owner_id = current_user
"
out=$(run dnr_owner "$ROW" "SELECT dnr.apply(\$p\$$TASKS_POLICY\$p\$); GRANT SELECT, INSERT ON tasks TO app")
expect_match "0.1.0 row_level apply" "applied 1 entity: Task \\(tasks\\)" "$out"
run postgres "$ROW" "INSERT INTO tasks (tenant_id, id, owner_id, title) VALUES ('$A', 1, '$ALICE', 'a1'), ('$A', 2, '$ALICE', 'a2'), ('$B', 3, '$ALICE', 'b1')" >/dev/null

out=$(run app "$ROW" "BEGIN; SELECT dnr.set_context('$A', '$ALICE'); SELECT string_agg(title, ',' ORDER BY id) FROM tasks; SELECT dnr.check_reason('Task', 'create', '{\"id\": 9, \"owner_id\": \"$ALICE\", \"tenant_id\": \"$A\"}'); COMMIT")
expect_match "the 0.2.0 library serves 0.1.0's SQL (isolation, check_reason)" "^a1,a2$" "$out"

# --- 0.1.0: schema mode, two tenants with rows ------------------------------
NOTES_POLICY="
tenancy:
  mode: schema
entity Note:
  table: notes
  id: int pk
  owner_id: uuid
  body: text
  access:
    read: owner_id = current_user
    create: owner_id = current_user
"
GRANT_APP="DO \$do\$ BEGIN EXECUTE format('GRANT USAGE ON SCHEMA %I TO app', current_schema()); END \$do\$; GRANT SELECT, INSERT ON notes TO app"
out=$(run dnr_owner "$SCH" "SELECT dnr.create_tenant('$A', 'Acme'); SELECT dnr.create_tenant('$B', 'Globex'); SELECT dnr.apply(\$p\$$NOTES_POLICY\$p\$); SELECT bool_and(ok) FROM dnr.migrate_tenants(\$d\$$GRANT_APP\$d\$)")
expect_match "0.1.0 schema apply" "in 2 tenant schemas" "$out"
expect_match "0.1.0 migrate_tenants" "^t$" "$out"
for t in "$A" "$B"; do
  run app "$SCH" "BEGIN; SELECT dnr.use_tenant('$t'); SELECT dnr.set_user('$ALICE'); INSERT INTO notes (id, owner_id, body) VALUES (1, '$ALICE', 'note of $t'), (2, '$ALICE', 'second of $t'); COMMIT" >/dev/null
done
out=$(run app "$SCH" "BEGIN; SELECT dnr.use_tenant('$A'); SELECT dnr.set_user('$ALICE'); SELECT count(*) FROM notes; COMMIT")
expect_match "0.1.0 schema rows" "^2$" "$out"

# --- update ------------------------------------------------------------------
for db in "$ROW" "$SCH"; do
  out=$(run postgres "$db" "ALTER EXTENSION dnr UPDATE TO '0.2.0'; $REVOKES SELECT extversion FROM pg_extension WHERE extname = 'dnr'")
  expect "$db: ALTER EXTENSION dnr UPDATE TO '0.2.0'" "0.2.0" "$out"
  out=$(run postgres "$db" "SELECT has_table_privilege('dnr_owner', 'dnr.applied', 'SELECT') OR has_table_privilege('dnr_owner', 'dnr.tenants', 'INSERT') OR has_table_privilege('dnr_owner', 'dnr.managed_tables', 'INSERT')")
  expect "$db: the owner holds no privilege on the registries" "f" "$out"
done

# --- row_level after the update ----------------------------------------------
out=$(run app "$ROW" "BEGIN; SELECT dnr.set_context('$A', '$ALICE'); SELECT string_agg(title, ',' ORDER BY id) FROM tasks; COMMIT")
expect_match "isolation after the update (tenant A)" "^a1,a2$" "$out"
out=$(run app "$ROW" "BEGIN; SELECT dnr.set_context('$B', '$ALICE'); SELECT string_agg(title, ',' ORDER BY id) FROM tasks; COMMIT")
expect_match "isolation after the update (tenant B)" "^b1$" "$out"
out=$(run app "$ROW" "SELECT count(*) FROM tasks")
expect_match "no tenant, no rows" "^0$" "$out"
out=$(run app "$ROW" "BEGIN; SELECT dnr.set_context('$A', '$ALICE'); INSERT INTO tasks (id, owner_id, title) VALUES (4, '$ALICE', 'a3'); SELECT tenant_id FROM tasks WHERE id = 4; COMMIT")
expect_match "the fill trigger after the update" "^$A$" "$out"
out=$(run app "$ROW" "BEGIN; SELECT dnr.set_context('$A', '$ALICE'); SELECT dnr.check('Task', 'create', '{\"id\": 9, \"owner_id\": \"$ALICE\", \"tenant_id\": \"$A\"}'); COMMIT")
expect_match "dnr.check after the update" "^t$" "$out"
out=$(run dnr_owner "$ROW" "SELECT applied_by || ' ' || mode || ' ' || (source = \$p\$$TASKS_POLICY\$p\$) FROM dnr.applied_policy()")
expect "applied_policy shows the owner the source it applied in 0.1.0" "dnr_owner row_level true" "$out"
out=$(run app "$ROW" "SELECT count(*) FROM dnr.applied_policy()")
expect "applied_policy shows the application role nothing" "0" "$out"
out=$(run dnr_owner "$ROW" "SELECT dnr.apply(\$p\$$TASKS_POLICY\$p\$)")
expect "the owner re-applies without grants" "applied 1 entity: Task (tasks)" "$out"
out=$(run dnr_owner "$ROW" "SELECT policy_name FROM dnr.policies WHERE table_name = 'tasks' ORDER BY 1")
expect "its policies after re-applying" "$(printf 'dnr_create\ndnr_fence\ndnr_maintain\ndnr_read')" "$out"
out=$(run app "$ROW" "BEGIN; SELECT dnr.set_context('$B', '$ALICE'); SELECT string_agg(title, ',' ORDER BY id) FROM tasks; COMMIT")
expect_match "isolation after re-applying" "^b1$" "$out"
out=$(run dnr_owner "$ROW" "CREATE TABLE docs (id int, tenant_id uuid); SELECT dnr.enable_tenant_isolation('docs')")
expect_match "enable_tenant_isolation without grants" "tenant isolation enabled on docs" "$out"
out=$(run dnr_owner "$ROW" "SELECT dnr.record_migration('public', 1, 'init', encode(sha256(convert_to('x', 'UTF8')), 'hex'), '1 second'); SELECT version || ' ' || name FROM dnr.migration_history('public')")
expect_match "migration history in a row_level store" "^1 init$" "$out"

# --- schema mode after the update --------------------------------------------
out=$(run app "$SCH" "BEGIN; SELECT dnr.use_tenant('$B'); SELECT dnr.set_user('$ALICE'); SELECT string_agg(body, ',' ORDER BY id) FROM notes; COMMIT")
expect_match "a tenant's schema after the update" "^note of $B,second of $B$" "$out"
out=$(run app "$SCH" "BEGIN; SELECT dnr.use_tenant('$B'); SELECT dnr.set_user('00000000-0000-0000-0000-000000000b0b'); SELECT count(*) FROM notes; COMMIT")
expect_match "the read rule after the update" "^0$" "$out"
out=$(run dnr_owner "$SCH" "SELECT dnr.create_tenant('$C', 'Initech'); SELECT count(*) FROM pg_policies WHERE schemaname = 'tenant_cccccccccccccccccccccccccccccccc' AND tablename = 'notes'")
# its two rules, the schema fence (dnr_fence, since issue 27) and the
# owner's maintenance policy (dnr_maintain, issue 23)
expect_match "a new tenant gets the policy applied in 0.1.0" "^4$" "$out"
out=$(run dnr_owner "$SCH" "SELECT name FROM dnr.list_tenants()")
expect "list_tenants after the update" "$(printf 'Acme\nGlobex\nInitech')" "$out"
out=$(run dnr_owner "$SCH" "SELECT dnr.apply(\$p\$$NOTES_POLICY\$p\$)")
expect "re-applying in every tenant schema" "applied 1 entity: Note (notes) in 3 tenant schemas" "$out"
out=$(run dnr_owner "$SCH" "SELECT string_agg(status, ',') FROM dnr.migrate_tenants(1, 'tags', 'ALTER TABLE notes ADD COLUMN tags text[]')")
expect "a versioned migration after the update" "applied,applied,applied" "$out"
out=$(run dnr_owner "$SCH" "SELECT string_agg(status, ',') FROM dnr.migrate_tenants(1, 'tags', 'ALTER TABLE notes ADD COLUMN tags text[]')")
expect "rerun skips" "skipped,skipped,skipped" "$out"
out=$(run dnr_owner "$SCH" "SELECT dnr.drop_tenant('$C'); SELECT count(*) FROM dnr.list_tenants()")
expect_match "drop_tenant without grants" "^2$" "$out"
out=$(run app "$SCH" "BEGIN; SELECT dnr.use_tenant('$A'); SELECT dnr.set_user('$ALICE'); SELECT string_agg(body, ',' ORDER BY id) FROM notes; COMMIT")
expect_match "tenant A's rows at the end" "^note of $A,second of $A$" "$out"

# --- the updated objects equal a fresh install's ------------------------------
run postgres postgres "CREATE DATABASE $CLEAN" >/dev/null
run postgres "$CLEAN" "CREATE EXTENSION dnr" >/dev/null
CATALOG="
SELECT 'member ' || pg_describe_object(d.classid, d.objid, d.objsubid)
  FROM pg_depend d WHERE d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'dnr') AND d.deptype = 'e'
UNION ALL
SELECT 'function ' || p.oid::regprocedure || ' ' || p.provolatile::text || p.prosecdef::text || p.proisstrict::text
       || ' ' || coalesce(p.proconfig::text, '-') || ' ' || coalesce(p.proacl::text, '-') || ' ' || md5(pg_get_functiondef(p.oid))
  FROM pg_proc p WHERE p.pronamespace = 'dnr'::regnamespace
UNION ALL
SELECT 'relation ' || c.oid::regclass || ' ' || c.relkind::text || ' ' || coalesce(c.relacl::text, '-')
       || ' ' || coalesce(md5(pg_get_viewdef(c.oid)), '-')
  FROM pg_class c WHERE c.relnamespace = 'dnr'::regnamespace
UNION ALL
SELECT 'column ' || a.attrelid::regclass || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
       || ' ' || a.attnotnull || ' ' || coalesce(pg_get_expr(ad.adbin, ad.adrelid), '-') || ' ' || a.attidentity::text
  FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
  LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
 WHERE c.relnamespace = 'dnr'::regnamespace AND a.attnum > 0 AND NOT a.attisdropped
UNION ALL
SELECT 'constraint ' || conrelid::regclass || ' ' || pg_get_constraintdef(oid)
  FROM pg_constraint WHERE connamespace = 'dnr'::regnamespace
UNION ALL
SELECT 'config_dump ' || x::regclass FROM pg_extension e, unnest(e.extconfig) x WHERE e.extname = 'dnr'
UNION ALL
SELECT 'schema ' || coalesce(nspacl::text, '-') FROM pg_namespace WHERE nspname = 'dnr'
ORDER BY 1"
fresh=$(run postgres "$CLEAN" "$CATALOG")
[ "$(wc -l <<<"$fresh")" -gt 50 ] || fail "the catalog query returned too little: $fresh"
for db in "$ROW" "$SCH"; do
  updated=$(run postgres "$db" "$CATALOG")
  if [ "$updated" = "$fresh" ]; then
    echo "ok: $db: the updated extension equals a fresh install ($(wc -l <<<"$fresh") catalog lines)"
  else
    diff <(printf '%s\n' "$fresh") <(printf '%s\n' "$updated") || true
    fail "$db: the updated extension differs from a fresh install (< fresh, > updated)"
  fi
done
echo "all upgrade checks passed"
