#!/usr/bin/env bash
# The `dnr` command against PostgreSQL, driven by dnr.toml, as ordinary
# roles (no superuser, no GRANTs on DNR's tables):
#   row_level  apply, tenants create/list/drop, migrate, status, explain;
#              the application role sees only its tenant's rows
#   schema     tenants (schemas) get the policy and every migration; a
#              migration failing in one tenant (others migrate, exit 1);
#              drift refused; --dry-run changes nothing; two concurrent runs
#              and a run killed with -9 then rerun (200 schemas) apply each
#              migration exactly once; a migration escaping its schema is
#              refused before anything runs
#   database   one database per tenant, from a template with the extension
#   ${VAR} missing: a clear error
#
# Run by scripts/pg-test.sh (PGHOST, PGPORT, PGUSER=postgres; roles
# dnr_owner and app; DNR_TEST_DB owned by dnr_owner, with the extension).
set -euo pipefail

: "${PGBIN:?}" "${DNR_TEST_DB:?}" "${PGHOST:?}" "${PGPORT:?}"
ROOT=${ROOT:-$(cd "$(dirname "$0")/../../.." && pwd)}
db=$DNR_TEST_DB
fail() { echo "FAILED: $*"; exit 1; }
ok() { echo "ok: $*"; }
psql_as() { "$PGBIN/psql" -X -q -t -A -v ON_ERROR_STOP=1 -U "$1" -d "$2" -c "$3"; }
expect() { [ "$3" = "$2" ] && ok "$1" || { printf 'expected:\n%s\ngot:\n%s\n' "$2" "$3"; fail "$1"; }; }

DNR=${DNR_BIN:-$ROOT/target/debug/dnr}
if [ ! -x "$DNR" ]; then
  (cd "$ROOT" && cargo build -q -p dnr-cli)
fi
work=$(mktemp -d)
cleanup() {
  rm -rf "$work"
  "$PGBIN/psql" -X -q -U postgres -d postgres >/dev/null 2>&1 <<SQL || true
SELECT pg_catalog.format('DROP DATABASE %I WITH (FORCE)', datname) FROM pg_database
 WHERE datname LIKE 'tenant\_%' OR datname IN ('${db}_s', '${db}_tpl') \gexec
DROP ROLE IF EXISTS dnr_cli;
SQL
}
trap cleanup EXIT

url() { echo "postgresql://$1@localhost/$2?host=$PGHOST&port=$PGPORT"; }
# project DIR MODE DATABASE ROLE [POOL]: a dnr.toml, a policy, migrations/
project() {
  mkdir -p "$1/migrations"
  cat >"$1/dnr.toml" <<TOML
[database]
backend = "postgres"
postgres_url = "\${DNR_TEST_URL}"
postgres_pool_size = ${5:-4}
tenant_mode = "$2"
postgres_template = "${db}_tpl"
TOML
  cat >"$1/policies.dnr" <<DNR
tenancy:
  mode: $2

entity Task:
  table: tasks
  id: int pk
  title: text
  owner_id: uuid
  access:
    read: true
    create: owner_id = current_user
    update: owner_id = current_user
DNR
  export DNR_TEST_URL
  DNR_TEST_URL=$(url "$4" "$3")
}
A=11111111-1111-4111-8111-111111111111
B=22222222-2222-4222-8222-222222222222
U=33333333-3333-4333-8333-333333333333

echo "== row_level"
p=$work/row && project "$p" row_level "$db" dnr_owner
cd "$p"
"$DNR" apply | grep "applied 1 entity" >/dev/null || fail "apply"
ok "apply as the non-superuser owner"
"$DNR" tenants create "$A" --name Acme >/dev/null
"$DNR" tenants create "$B" >/dev/null
expect "tenants list" "$A	Acme	
$B		" "$("$DNR" tenants list)"
echo "ALTER TABLE tasks ADD COLUMN due date;" >migrations/0001_due.sql
"$DNR" migrate --json | grep '"status":"applied"' >/dev/null || fail "migrate"
expect "history recorded with the DDL" "public|1|due" \
  "$(psql_as postgres "$db" "SELECT store, version, name FROM dnr.migrations")"
psql_as dnr_owner "$db" "GRANT SELECT, INSERT, UPDATE, DELETE ON tasks TO app"
psql_as app "$db" "BEGIN; SELECT dnr.set_context('$A', '$U'); INSERT INTO tasks (id, title, owner_id, due) VALUES (1, 'a', '$U', '2026-01-01'); COMMIT;" >/dev/null
psql_as app "$db" "BEGIN; SELECT dnr.set_context('$B', '$U'); INSERT INTO tasks (id, title, owner_id) VALUES (2, 'b', '$U'); COMMIT;" >/dev/null
expect "the app sees its tenant's rows only" "1|2026-01-01" \
  "$(psql_as app "$db" "SELECT dnr.set_context('$A', '$U'); SELECT id, due FROM tasks" | sed '/^$/d')"
out=$("$DNR" explain Task create --as "$A:$U" --row "{\"id\": 3, \"owner_id\": \"$U\"}")
case "$out" in allowed:*) ok "explain allowed" ;; *) fail "explain: $out" ;; esac
out=$("$DNR" explain Task create --as "$A:$B" --row "{\"id\": 3, \"owner_id\": \"$U\"}")
case "$out" in refused:*owner_id*) ok "explain refused, naming the rule" ;; *) fail "explain: $out" ;; esac
"$DNR" status | grep "^database	current	1	0	-$" >/dev/null || { "$DNR" status; fail "status"; }
ok "status"
"$DNR" tenants drop "$B" >/dev/null
expect "tenants drop" "$A	Acme	" "$("$DNR" tenants list)"

echo "== schema"
psql_as postgres postgres "CREATE DATABASE \"${db}_s\" TEMPLATE dnr_template OWNER dnr_owner"
p=$work/schema && project "$p" schema "${db}_s" dnr_owner 4
cd "$p"
"$DNR" apply >/dev/null
echo "ALTER TABLE tasks ADD COLUMN due date;" >migrations/0001_due.sql
ids=()
for i in $(seq 1 6); do ids+=("$(printf '%08d-0000-4000-8000-%012d' "$i" "$i")"); done
"$DNR" tenants create "${ids[@]}" --json >/dev/null
expect "each new tenant schema has the policy's table and the migration" "6" \
  "$(psql_as dnr_owner "${db}_s" "SELECT count(*) FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relname = 'tasks' AND a.attname = 'due' AND n.nspname LIKE 'tenant\_%' AND c.relrowsecurity")"
# One tenant already has what the next migration creates.
s2=tenant_$(echo "${ids[1]}" | tr -d -)
psql_as dnr_owner "${db}_s" "CREATE TABLE $s2.notes (x int)"
echo "CREATE TABLE notes (x int);" >migrations/0002_notes.sql
status=0
out=$("$DNR" migrate --json 2>"$work/err") || status=$?
[ "$status" = 1 ] || fail "a failed tenant makes the exit code 1 (got $status)"
[ "$(grep -c '"status":"applied"' <<<"$out")" = 5 ] || fail "the other tenants migrate: $out"
grep '"status":"failed"' <<<"$out" | grep "\"tenant\":\"${ids[1]}\"" >/dev/null \
  || fail "the failed tenant is reported: $out"
grep -q "1 of 6 stores failed" "$work/err" || fail "summary: $(cat "$work/err")"
ok "a migration failing in one tenant: others migrated, reported, exit 1"
psql_as dnr_owner "${db}_s" "DROP TABLE $s2.notes"
"$DNR" migrate --json >/dev/null
expect "rerun completes that tenant" "12" "$(psql_as postgres "${db}_s" "SELECT count(*) FROM dnr.migrations")"
# --dry-run runs and rolls back.
echo "ALTER TABLE tasks ADD COLUMN prio int;" >migrations/0003_prio.sql
"$DNR" migrate --dry-run --json | grep '"would_apply"' >/dev/null || fail "dry run"
expect "--dry-run changes nothing" "0|12" \
  "$(psql_as dnr_owner "${db}_s" "SELECT count(*) FROM pg_attribute WHERE attname = 'prio'")|$(psql_as postgres "${db}_s" "SELECT count(*) FROM dnr.migrations")"
# Drift: a recorded file changed.
echo "ALTER TABLE tasks ADD COLUMN due timestamptz;" >migrations/0001_due.sql
"$DNR" migrate --json >"$work/out" 2>&1 && fail "drift must fail"
[ "$(grep -c '"status":"drift"' "$work/out")" = 6 ] || fail "drift in every store: $(cat "$work/out")"
expect "nothing ran in drifted stores" "0" "$(psql_as dnr_owner "${db}_s" "SELECT count(*) FROM pg_attribute WHERE attname = 'prio'")"
"$DNR" status >"$work/out" 2>&1 && fail "status shows drift with a non-zero exit"
grep -q "version 1 (due) was recorded with checksum" "$work/out" || fail "status: $(cat "$work/out")"
ok "drift refused and shown"
echo "ALTER TABLE tasks ADD COLUMN due date;" >migrations/0001_due.sql
# A migration that names another schema is refused before anything runs.
echo "CREATE TABLE public.leak (x int);" >migrations/0004_leak.sql
"$DNR" migrate >"$work/out" 2>&1 && fail "escape must fail"
grep -q "names another schema" "$work/out" || fail "escape: $(cat "$work/out")"
expect "nothing ran" "0" "$(psql_as dnr_owner "${db}_s" "SELECT count(*) FROM pg_attribute WHERE attname = 'prio'")"
rm migrations/0004_leak.sql
ok "a migration escaping its schema is refused"

echo "== schema: 200 tenants, kill -9, concurrent runs"
more=()
for i in $(seq 7 200); do more+=("$(printf '%08d-0000-4000-8000-%012d' "$i" "$i")"); done
"$DNR" tenants create "${more[@]}" --json >/dev/null
for v in 5 6 7; do
  printf 'ALTER TABLE tasks ADD COLUMN c%s text;\nCREATE INDEX tasks_c%s ON tasks (c%s);\n' $v $v $v >migrations/000${v}_c$v.sql
done
"$DNR" migrate --json >"$work/killed" 2>/dev/null &
pid=$!
for _ in $(seq 1 200); do
  [ "$(grep -c '"status":"applied"' "$work/killed" 2>/dev/null || true)" -ge 30 ] && break
  sleep 0.05
done
kill -9 "$pid" 2>/dev/null || true
wait "$pid" 2>/dev/null || true
done_before=$(psql_as postgres "${db}_s" "SELECT count(DISTINCT store) FROM dnr.migrations WHERE version = 7")
[ "$done_before" -ge 1 ] && [ "$done_before" -lt 200 ] || fail "the kill came at the wrong time ($done_before stores done)"
# two runs at once finish the job
"$DNR" migrate --json >"$work/r1" 2>&1 &
p1=$!
"$DNR" migrate --json >"$work/r2" 2>&1 &
p2=$!
wait "$p1" || fail "run 1: $(tail -3 "$work/r1")"
wait "$p2" || fail "run 2: $(tail -3 "$work/r2")"
expect "every tenant has every migration exactly once" "200|1200|1200" \
  "$(psql_as postgres "${db}_s" "SELECT count(DISTINCT store), count(*), count(DISTINCT (store, version)) FROM dnr.migrations")"
expect "and the columns once each" "600" \
  "$(psql_as dnr_owner "${db}_s" "SELECT count(*) FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relname = 'tasks' AND a.attname IN ('c5', 'c6', 'c7') AND n.nspname LIKE 'tenant\_%'")"
"$DNR" tenants drop "${ids[0]}" >/dev/null
expect "drop removes the schema" "0" "$(psql_as postgres "${db}_s" "SELECT count(*) FROM pg_namespace WHERE nspname = 'tenant_$(echo "${ids[0]}" | tr -d -)'")"

echo "== database"
psql_as postgres postgres "CREATE ROLE dnr_cli LOGIN CREATEDB NOSUPERUSER NOBYPASSRLS"
psql_as postgres postgres "CREATE DATABASE \"${db}_tpl\" TEMPLATE dnr_template IS_TEMPLATE true"
p=$work/database && project "$p" database postgres dnr_cli
cd "$p"
echo "ALTER TABLE tasks ADD COLUMN due date;" >migrations/0001_due.sql
"$DNR" tenants create "$A" --name Acme >/dev/null
"$DNR" tenants create "$B" >/dev/null
da=tenant_$(echo "$A" | tr -d -)
expect "tenants list" "$A	Acme	$da" "$("$DNR" tenants list | head -1)"
expect "a tenant's database has the policy and the migration" "t|1" \
  "$(psql_as dnr_cli "$da" "SELECT c.relrowsecurity FROM pg_class c WHERE c.relname = 'tasks'")|$(psql_as postgres "$da" "SELECT count(*) FROM dnr.migrations")"
echo "ALTER TABLE tasks ADD COLUMN prio int;" >migrations/0002_prio.sql
"$DNR" migrate --json | grep -c '"status":"applied"' | grep -x 2 >/dev/null || fail "migrate every tenant database"
"$DNR" apply --json | grep -c '"status":"applied"' | grep -x 2 >/dev/null || fail "apply to every tenant database"
"$DNR" tenants drop "$B" >/dev/null
expect "drop removes the database" "0" "$(psql_as postgres postgres "SELECT count(*) FROM pg_database WHERE datname = 'tenant_$(echo "$B" | tr -d -)'")"
ok "database mode"

echo "== configuration"
unset DNR_TEST_URL
"$DNR" status >"$work/out" 2>&1 && fail "missing variable"
grep -q "environment variable \`DNR_TEST_URL\`, which is not set" "$work/out" || fail "missing variable: $(cat "$work/out")"
ok "a missing \${VAR} is a clear error"
