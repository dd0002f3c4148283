#!/usr/bin/env bash
# Tenant files (issue 23) against PostgreSQL, with the `dnr` command as the
# non-superuser owner: a tenant of every value kind exported from
# row_level, erased (counted; the other tenant untouched), restored,
# imported into schema mode and into a SQLite project, exported again
# with the same checksum; the file opened with `.load` answers only to its
# tenant; database mode too; maintenance is the owner's alone (the application role that sets
# `dnr.maintenance` gains nothing); a value the target cannot hold is an
# error naming table, row and column, and nothing is imported.
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
[ -x "$DNR" ] || (cd "$ROOT" && cargo build -q -p dnr-cli)
LIB=$ROOT/target/release/libdnr
[ -f "$LIB.so" ] || (cd "$ROOT" && cargo build -q --release -p dnr-sqlite-ext)
work=$(mktemp -d)
cleanup() {
  rm -rf "$work"
  "$PGBIN/psql" -X -q -U postgres -d postgres >/dev/null 2>&1 <<SQL || true
SELECT pg_catalog.format('DROP DATABASE %I WITH (FORCE)', datname) FROM pg_database
 WHERE datname IN ('${db}_tf', '${db}_tfs') OR datname LIKE 'tenant\_%' \gexec
UPDATE pg_database SET datistemplate = false WHERE datname = '${db}_tftpl';
DROP DATABASE IF EXISTS "${db}_tftpl";
DROP ROLE IF EXISTS dnr_tf;
SQL
}
trap cleanup EXIT

url() { echo "postgresql://$1@localhost/$2?host=$PGHOST&port=$PGPORT"; }
# project DIR BACKEND MODE [DATABASE [ROLE]]
project() {
  mkdir -p "$1/migrations"
  if [ "$2" = postgres ]; then
    printf '[database]\nbackend = "postgres"\npostgres_url = "%s"\ntenant_mode = "%s"\npostgres_template = "%s"\n' \
      "$(url "${5:-dnr_owner}" "$4")" "$3" "${db}_tftpl" >"$1/dnr.toml"
  else
    printf '[database]\nbackend = "sqlite"\ntenant_mode = "%s"\n' "$3" >"$1/dnr.toml"
  fi
  cat >"$1/policies.dnr" <<DNR
tenancy:
  mode: $3

entity Task:
  table: tasks
  id: int pk
  title: text
  owner_id: uuid
  done: bool
  score: float
  meta: json
  due: datetime
  access:
    read: owner_id = current_user
    create: owner_id = current_user
    update: owner_id = current_user
DNR
  (cd "$1" && "$DNR" apply >/dev/null)
}
A=11111111-1111-4111-8111-111111111111
B=22222222-2222-4222-8222-222222222222
U=33333333-3333-4333-8333-333333333333
# rows DATABASE TENANT [SCHEMA]: the tenant's rows as the owner's context reads them
rows() {
  local path=""
  [ -n "${3:-}" ] && path="SET LOCAL search_path = $3;"
  psql_as "${ROLE:-dnr_owner}" "$1" "BEGIN; SELECT dnr.set_context('$2', '$U'); $path SELECT id, title, owner_id, done, score, meta::jsonb, to_char(due AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') FROM tasks ORDER BY id; COMMIT;" | sed '/^$/d;/^BEGIN$/d;/^COMMIT$/d'
}

psql_as postgres postgres "CREATE DATABASE \"${db}_tf\" TEMPLATE dnr_template OWNER dnr_owner"
psql_as postgres postgres "CREATE DATABASE \"${db}_tfs\" TEMPLATE dnr_template OWNER dnr_owner"

echo "== export from PostgreSQL row_level"
p=$work/row && project "$p" postgres row_level "${db}_tf"
cd "$p"
"$DNR" tenants create "$A" "$B" >/dev/null
psql_as dnr_owner "${db}_tf" "BEGIN; SELECT dnr.set_context('$A', '$U');
INSERT INTO tasks (id, title, owner_id, done, score, meta, due) VALUES
 (9223372036854775807, 'naïve 日本 tab	here', '$U', true, 0.1, '{\"n\": 1, \"tags\": [\"a\"]}', '2026-12-06 10:11:12.123456+00'),
 (-9223372036854775808, '''quoted'' \"too\"', '$U', false, -1e300, '[]', '1999-01-01 00:00:00+05'),
 (3, '', '$U', NULL, NULL, NULL, NULL);
COMMIT;" >/dev/null
psql_as dnr_owner "${db}_tf" "BEGIN; SELECT dnr.set_context('$B', '$U'); INSERT INTO tasks (id, title, owner_id) VALUES (1, 'b only', '$U'); COMMIT;" >/dev/null
a_rows=$(rows "${db}_tf" "$A")
b_rows=$(rows "${db}_tf" "$B")
[ "$(wc -l <<<"$a_rows")" = 3 ] || fail "fixture: $a_rows"
out=$("$DNR" tenants export "$A" --out "$work/a.dnrt")
case "$out" in *"3 rows in 1 tables"*) ok "export: $out" ;; *) fail "export: $out" ;; esac

echo "== the file answers to its tenant only (sqlite3 shell, .load)"
seen=$(sqlite3 "$work/a.dnrt" ".load $LIB" "BEGIN" "SELECT dnr_set_context('$A', '$U')" "SELECT count(*), sum(done), min(id) FROM tasks" "COMMIT" 2>&1 | sed '/^$/d')
expect "the tenant's rows through the file's own enforcement" "3|1|-9223372036854775808" "$seen"
refused=$(sqlite3 "$work/a.dnrt" ".load $LIB" "SELECT dnr_set_context('$B', '$U', NULL, 0)" 2>&1 || true)
case "$refused" in *"belongs to tenant $A"*) ok "the file refuses another tenant's context" ;; *) fail "file context: $refused" ;; esac

echo "== maintenance is the owner's"
psql_as dnr_owner "${db}_tf" "GRANT SELECT, INSERT, UPDATE, DELETE ON tasks TO app"
psql_as app "${db}_tf" "BEGIN; SELECT dnr.set_context('$A', '$B'); SELECT set_config('dnr.maintenance', 'on', true); DELETE FROM tasks; UPDATE tasks SET title = 'x'; COMMIT;" >/dev/null
expect "the application role in 'maintenance' changed nothing" "$a_rows" "$(rows "${db}_tf" "$A")"

echo "== erase and restore"
out=$("$DNR" tenants drop "$A" --erase)
case "$out" in *"tasks	3"*) ok "erase counts the rows" ;; *) fail "erase: $out" ;; esac
expect "the erased tenant has no rows" "" "$(rows "${db}_tf" "$A")"
expect "the other tenant is untouched" "$b_rows" "$(rows "${db}_tf" "$B")"
out=$("$DNR" tenants import "$work/a.dnrt")
case "$out" in *"imported tenant $A"*) ok "restore" ;; *) fail "restore: $out" ;; esac
expect "the restored rows equal the exported ones" "$a_rows" "$(rows "${db}_tf" "$A")"
"$DNR" tenants import "$work/a.dnrt" >/dev/null 2>&1 && fail "an existing tenant must need --replace"
"$DNR" tenants import "$work/a.dnrt" --replace >/dev/null
expect "--replace: no row twice" "$a_rows" "$(rows "${db}_tf" "$A")"
out=$("$DNR" tenants drop "$B")
case "$out" in *"rows stay"*"--erase"*) ok "drop without --erase says the rows stay" ;; *) fail "drop: $out" ;; esac

echo "== into schema mode, and back out"
p=$work/schema && project "$p" postgres schema "${db}_tfs"
cd "$p"
"$DNR" tenants import "$work/a.dnrt" >/dev/null
schema=tenant_$(echo "$A" | tr -d -)
expect "the schema holds the same rows" "$a_rows" "$(rows "${db}_tfs" "$A" "$schema")"
"$DNR" tenants export "$A" --out "$work/back.dnrt" >/dev/null
manifest() { sqlite3 "$1" "SELECT json_extract(value, '\$.checksum') FROM _dnr_meta WHERE key = 'tenant_file'"; }
expect "PostgreSQL → file → PostgreSQL → file: the same checksum" "$(manifest "$work/a.dnrt")" "$(manifest "$work/back.dnrt")"
out=$("$DNR" tenants drop "$A" --erase)
case "$out" in *"tasks	3"*) ok "erase in schema mode" ;; *) fail "schema erase: $out" ;; esac
expect "the schema is gone" "0" "$(psql_as dnr_owner "${db}_tfs" "SELECT count(*) FROM pg_namespace WHERE nspname = '$schema'")"

echo "== into database mode"
psql_as postgres postgres "CREATE ROLE dnr_tf LOGIN CREATEDB NOSUPERUSER NOBYPASSRLS"
psql_as postgres postgres "CREATE DATABASE \"${db}_tftpl\" TEMPLATE dnr_template IS_TEMPLATE true"
p=$work/database && project "$p" postgres database postgres dnr_tf
cd "$p"
"$DNR" tenants import "$work/a.dnrt" >/dev/null
da=tenant_$(echo "$A" | tr -d -)
expect "the tenant's own database holds the same rows" "$a_rows" "$(ROLE=dnr_tf rows "$da" "$A")"
"$DNR" tenants export "$A" --out "$work/db.dnrt" >/dev/null
expect "PostgreSQL database mode → file: the same checksum" "$(manifest "$work/a.dnrt")" "$(manifest "$work/db.dnrt")"
out=$("$DNR" tenants drop "$A" --erase)
case "$out" in *"tasks	3"*) ok "erase in database mode" ;; *) fail "database erase: $out" ;; esac
expect "the database is gone" "0" "$(psql_as postgres postgres "SELECT count(*) FROM pg_database WHERE datname = '$da'")"

echo "== holds and moves"
cd "$work/row"
out=$(psql_as app "${db}_tf" "SELECT dnr.hold_tenant('$B')" 2>&1) && fail "the application role held a tenant"
case "$out" in *"only a role that applied a policy"*) ok "the application role cannot hold a tenant" ;; *) fail "app hold: $out" ;; esac
psql_as dnr_owner "${db}_tf" "SELECT dnr.hold_tenant('$A')" >/dev/null
out=$(psql_as app "${db}_tf" "BEGIN; SELECT dnr.set_context('$A', '$U'); COMMIT;" 2>&1) && fail "a held tenant's context was set"
case "$out" in *"tenant $A is moving"*"retry"*) ok "a held tenant's context is refused, retryably" ;; *) fail "held: $out" ;; esac
out=$(psql_as dnr_owner "${db}_tf" "BEGIN; SELECT dnr.set_context('$A', '$U'); COMMIT;" 2>&1) && fail "the holder set a held tenant outside maintenance"
case "$out" in *"is moving"*) ok "the holder too, outside maintenance" ;; *) fail "holder: $out" ;; esac
out=$(psql_as app "${db}_tf" "BEGIN; SELECT dnr.current_tenant(); SET LOCAL dnr.tenant_id = '{$(echo "$A" | tr a-f A-F)}'; COMMIT;" 2>&1) && fail "a held tenant set in another spelling"
case "$out" in *"is moving"*) ok "another spelling of the id is held too" ;; *) fail "spelling: $out" ;; esac
psql_as app "${db}_tf" "BEGIN; SELECT dnr.set_context('$B', '$U'); COMMIT;" >/dev/null || fail "another tenant was held"
expect "the owner releases its hold" "t" "$(psql_as dnr_owner "${db}_tf" "SELECT dnr.release_tenant('$A')")"
psql_as app "${db}_tf" "BEGIN; SELECT dnr.set_context('$A', '$U'); COMMIT;" >/dev/null || fail "released tenant"
ok "released, the tenant's context is taken again"
# A move from row_level to schema mode.
"$DNR" tenants move "$A" --to "$work/schema/dnr.toml" >/dev/null
expect "moved: the schema serves the tenant's rows, once" "$a_rows" "$(rows "${db}_tfs" "$A" "$schema")"
expect "the row_level database holds none of them" "0" \
  "$(psql_as dnr_owner "${db}_tf" "BEGIN; SELECT set_config('dnr.maintenance', 'on', true); SELECT dnr.set_context('$A', NULL); SELECT count(*) FROM tasks; COMMIT;" | sed '/^$/d;/^on$/d')"
# Moves back and forth, killed with -9 at 20 points and run again each
# time: never served by both, every row once at the end.
C=44444444-4444-4444-8444-444444444444
sc=tenant_$(echo "$C" | tr -d -)
"$DNR" tenants create "$C" >/dev/null
psql_as dnr_owner "${db}_tf" "BEGIN; SELECT dnr.set_context('$C', '$U'); INSERT INTO tasks (id, title, owner_id) SELECT i, 'task ' || i, '$U' FROM generate_series(1, 5000) i; COMMIT;" >/dev/null
# served DB [SCHEMA]: "count|sum" of C's rows where C is served; nothing where
# it is not (held, no schema, or no rows)
served() { psql_as dnr_owner "$1" "BEGIN; SELECT dnr.set_context('$C', '$U'); ${2:+SET LOCAL search_path = $2;} SELECT count(*), sum(id) FROM tasks; COMMIT;" 2>/dev/null | sed '/^$/d;/^0|$/d' || true; }
at=row; kills=0; moves=0
for i in $(seq 0 300); do
  if [ "$at" = row ]; then from=$work/row; to=$work/schema/dnr.toml; else from=$work/schema; to=$work/row/dnr.toml; fi
  (cd "$from" && exec "$DNR" tenants move "$C" --to "$to" >/dev/null 2>"$work/move.err") &
  pid=$!
  sleep "0.$(printf '%03d' $(( (i * 37) % 500 )))"
  if kill -9 "$pid" 2>/dev/null; then kills=$((kills + 1)); wait "$pid" 2>/dev/null || true
  else wait "$pid" || fail "a move failed: $(cat "$work/move.err")"; fi
  here=$(served "${db}_tf"); there=$(served "${db}_tfs" "$sc")
  if [ "$here" = "5000|12502500" ] && [ "$there" = "5000|12502500" ]; then
    fail "served by both after kill $kills (moving from $at; journal: $(cat "$from/.dnr/moves/$C.json" 2>/dev/null); holds: $(psql_as postgres "${db}_tf" "SELECT string_agg(tenant::text, ',') FROM dnr.held_tenants") / $(psql_as postgres "${db}_tfs" "SELECT string_agg(tenant::text, ',') FROM dnr.held_tenants"))"
  fi
  if [ ! -f "$from/.dnr/moves/$C.json" ] && ! (cd "$from" && "$DNR" tenants list) | grep -q "^$C"; then
    moves=$((moves + 1)); if [ "$at" = row ]; then at=schema; else at=row; fi
  fi
  [ "$kills" -ge 20 ] && [ "$moves" -ge 2 ] && break
done
[ "$kills" -ge 20 ] && [ "$moves" -ge 2 ] || fail "only $kills kills and $moves moves"
if [ "$at" = row ]; then from=$work/row; to=$work/schema/dnr.toml; else from=$work/schema; to=$work/row/dnr.toml; fi
if [ -f "$from/.dnr/moves/$C.json" ]; then
  (cd "$from" && "$DNR" tenants move "$C" --to "$to" >/dev/null) || fail "finishing the move"
  if [ "$at" = row ]; then at=schema; else at=row; fi
fi
here=$(served "${db}_tf"); there=$(served "${db}_tfs" "$sc")
if [ "$at" = row ]; then expect "after $kills kills and $moves moves: served once, every row" "5000|12502500 " "$here $there"
else expect "after $kills kills and $moves moves: served once, every row" " 5000|12502500" "$here $there"; fi
cd "$work/row"

echo "== the seed's path: SQLite (none) -> row_level -> PostgreSQL row_level -> schema -> SQLite, a database per tenant"
S=55555555-5555-4555-8555-555555555555
p=$work/seed && project "$p" sqlite none
cd "$p"
sqlite3 .dnr/data.db ".load $LIB" "SELECT dnr_set_context(NULL, '$U', NULL, 0)" \
  "INSERT INTO tasks (id, title, owner_id, done, due) VALUES (1, 'seed one', '$U', 1, '2026-01-02T03:04:05.000006Z'), (2, 'seed two', '$U', 0, NULL)" >/dev/null
printf '[database]\nbackend = "sqlite"\ntenant_mode = "row_level"\n' >dnr.toml
sed -i 's/mode: none/mode: row_level/' policies.dnr
"$DNR" tenants adopt "$S" | grep -q "tasks	2" || fail "adopt"
ok "a single-tenant SQLite app adopted as tenant S"
"$DNR" tenants move "$S" --to "$work/row/dnr.toml" >/dev/null
seed_rows=$(rows "${db}_tf" "$S")
expect "on PostgreSQL row_level" "2" "$(wc -l <<<"$seed_rows" | tr -d ' ')"
(cd "$work/row" && "$DNR" tenants move "$S" --to "$work/schema/dnr.toml" >/dev/null)
expect "on PostgreSQL schema mode, the same rows" "$seed_rows" "$(rows "${db}_tfs" "$S" "tenant_$(echo "$S" | tr -d -)")"
p=$work/seeddb && project "$p" sqlite database
(cd "$work/schema" && "$DNR" tenants move "$S" --to "$work/seeddb/dnr.toml" >/dev/null)
expect "back in SQLite, its own file" "1|seed one|1|2026-01-02T03:04:05.000006Z
2|seed two|0|" \
  "$(sqlite3 "$work/seeddb/.dnr/tenants/$S/data.db" ".load $LIB" "BEGIN" "SELECT dnr_set_context('$S', '$U')" "SELECT id, title, done, due FROM tasks ORDER BY id" "COMMIT" | sed '/^$/d')"
expect "nowhere else" "||" "$(rows "${db}_tf" "$S")|$(rows "${db}_tfs" "$S" "tenant_$(echo "$S" | tr -d -)" 2>/dev/null || true)|$(sqlite3 "$work/seed/.dnr/data.db" "SELECT group_concat(id) FROM _dnr_tasks")"

echo "== into SQLite"
p=$work/lite && project "$p" sqlite row_level
cd "$p"
"$DNR" tenants import "$work/a.dnrt" >/dev/null
lite=$(sqlite3 .dnr/data.db ".load $LIB" "BEGIN" "SELECT dnr_set_context('$A', '$U')" "SELECT count(*), min(id), max(id), sum(done) FROM tasks" "COMMIT" | sed '/^$/d')
expect "SQLite holds the same rows" "3|-9223372036854775808|9223372036854775807|1" "$lite"
"$DNR" tenants export "$A" --out "$work/lite.dnrt" >/dev/null
expect "PostgreSQL → SQLite → file: the same checksum" "$(manifest "$work/a.dnrt")" "$(manifest "$work/lite.dnrt")"

echo "== a value the target cannot hold"
echo "ALTER TABLE tasks ADD COLUMN n INTEGER;" >migrations/0001_n.sql
"$DNR" migrate >/dev/null
sqlite3 .dnr/data.db ".load $LIB" "BEGIN" "SELECT dnr_set_context('$A', '$U')" "UPDATE tasks SET n = 'not a number' WHERE id = 3" "COMMIT" >/dev/null
"$DNR" tenants export "$A" --out "$work/n.dnrt" >/dev/null
p=$work/row2 && psql_as postgres postgres "DROP DATABASE IF EXISTS \"${db}_tf\" WITH (FORCE)" && \
  psql_as postgres postgres "CREATE DATABASE \"${db}_tf\" TEMPLATE dnr_template OWNER dnr_owner" && \
  project "$p" postgres row_level "${db}_tf"
cd "$p"
echo "ALTER TABLE tasks ADD COLUMN n bigint;" >migrations/0001_n.sql
"$DNR" migrate >/dev/null
out=$("$DNR" tenants import "$work/n.dnrt" 2>&1) && fail "a value bigint cannot hold was imported"
case "$out" in *"table \`tasks\`"*"id = Integer(3)"*"column \`n\`"*"nothing was imported"*) ok "the error names table, row and column" ;; *) fail "bad value: $out" ;; esac
expect "nothing was imported, no tenant made" "0|" "$(psql_as dnr_owner "${db}_tf" "SELECT count(*) FROM dnr_tenants")|$(rows "${db}_tf" "$A")"
