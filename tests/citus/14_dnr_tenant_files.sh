#!/usr/bin/env bash
# Tenant files and moves on Citus (issue 23), with the `dnr` command as the
# non-superuser owner: a tenant of a plain PostgreSQL row_level database
# (on the coordinator, without Citus) moves into a distributed table of a
# Citus database; its rows land on the shards, the moved rows are the
# exported ones (the same checksum when exported again from Citus), and a
# tenant file imports into the distributed table as well.
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
db=dnr_tf
plain=dnr_tf_plain
DNR=${DNR_BIN:-$ROOT/target/debug/dnr}
[ -x "$DNR" ] || (cd "$ROOT" && cargo build -q -p dnr-cli)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for role in dnr_owner app; do
  [ "$(citus_psql 0 -Atc "SELECT count(*) FROM pg_roles WHERE rolname = '$role'")" = 1 ] \
    || citus_psql 0 -c "CREATE ROLE $role LOGIN NOSUPERUSER NOBYPASSRLS" >/dev/null
done
citus_create_db "$db" dnr_owner
citus_psql 0 -d postgres -c "DROP DATABASE IF EXISTS $plain" -c "CREATE DATABASE $plain OWNER dnr_owner" >/dev/null
citus_psql 0 -d "$plain" -c "CREATE EXTENSION dnr" >/dev/null
A=11111111-1111-4111-8111-111111111111
B=22222222-2222-4222-8222-222222222222
U=33333333-3333-4333-8333-333333333333
# project DIR DATABASE
project() {
  mkdir -p "$1/migrations"
  printf '[database]\nbackend = "postgres"\npostgres_url = "postgresql://dnr_owner@127.0.0.1:%s/%s"\ntenant_mode = "row_level"\n' \
    "$CITUS_COORDINATOR_PORT" "$2" >"$1/dnr.toml"
  printf 'entity Task:\n  table: tasks\n  id: int pk\n  title: text\n  owner_id: uuid\n  done: bool\n  access:\n    read: owner_id = current_user\n    create: owner_id = current_user\n' >"$1/policies.dnr"
  (cd "$1" && "$DNR" apply >/dev/null)
}
# rows DATABASE TENANT: the tenant's rows as the owner's context reads them
rows() {
  "$PGBIN/psql" -X -q -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$CITUS_COORDINATOR_PORT" -U dnr_owner -d "$1" <<SQL
BEGIN;
SELECT dnr.set_context('$2', '$U') \\g /dev/null
SELECT count(*), sum(id), count(*) FILTER (WHERE done), min(title) FROM tasks;
COMMIT;
SQL
}
manifest() { sqlite3 "$1" "SELECT json_extract(value, '\$.checksum') FROM _dnr_meta WHERE key = 'tenant_file'"; }

project "$work/plain" "$plain"
project "$work/citus" "$db"
out=$(citus_psql 0 -d "$db" -U dnr_owner -Atc "SET client_min_messages = warning; SELECT create_distributed_table('tasks', 'tenant_id')" 2>&1)
[ -z "$out" ] || fail "create_distributed_table: $out"
ok "the Citus project's table is distributed by tenant_id"
(cd "$work/plain" && "$DNR" tenants create "$A" >/dev/null)
"$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$CITUS_COORDINATOR_PORT" -U dnr_owner -d "$plain" >/dev/null <<SQL
BEGIN;
SELECT dnr.set_context('$A', '$U') \\g /dev/null
INSERT INTO tasks (id, title, owner_id, done) SELECT i, 'task ' || i, '$U', i % 3 = 0 FROM generate_series(1, 3000) i;
COMMIT;
SQL
before=$(rows "$plain" "$A")
expect "the plain database's tenant" "3000|4501500|1000|task 1" "$before"
(cd "$work/plain" && "$DNR" tenants export "$A" --out "$work/a.dnrt" >/dev/null)
out=$(cd "$work/plain" && "$DNR" tenants move "$A" --to "$work/citus/dnr.toml" 2>&1) || fail "move: $out"
case "$out" in *"switched"*) ok "moved from plain PostgreSQL to Citus" ;; *) fail "move: $out" ;; esac
expect "Citus serves the same rows" "$before" "$(rows "$db" "$A")"
expect "the plain database serves none" "0||0|" "$(rows "$plain" "$A")"
shards=$(citus_psql 0 -d "$db" -Atc "SELECT count(DISTINCT nodeport) FROM citus_shards WHERE table_name = 'tasks'::regclass")
[ "$shards" -ge 1 ] || fail "no shards"
(cd "$work/citus" && "$DNR" tenants export "$A" --out "$work/back.dnrt" >/dev/null)
expect "exported again from Citus: the same checksum" "$(manifest "$work/a.dnrt")" "$(manifest "$work/back.dnrt")"
out=$(cd "$work/citus" && "$DNR" tenants import "$work/a.dnrt" --as "$B" 2>&1) || fail "import: $out"
expect "a tenant file imports into the distributed table (another id)" "$before" "$(rows "$db" "$B")"
out=$(cd "$work/citus" && "$DNR" tenants drop "$B" --erase)
case "$out" in *"tasks	3000"*) ok "erase on Citus" ;; *) fail "erase: $out" ;; esac
expect "tenant A untouched by B's erase" "$before" "$(rows "$db" "$A")"
citus_psql 0 -d postgres -c "DROP DATABASE $plain WITH (FORCE)" >/dev/null
