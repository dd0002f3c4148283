#!/usr/bin/env bash
# Tenant files and moves (issue 23's targets), each beside a naive
# baseline measured in the same run:
#
#   SQLite row_level, one tenant of N narrow rows (id, title, owner_id):
#     export   `dnr tenants export` vs `sqlite3 .mode insert` of the
#              tenant's rows (an INSERT dump)
#     import   `dnr tenants import` into another project vs replaying that
#              dump into a plain table in one transaction
#   PostgreSQL row_level, the same tenant:
#     export   `dnr tenants export` vs `psql` writing the rows as INSERT
#              statements (pg_dump --inserts style, as the owner with the
#              tenant's context)
#     import   `dnr tenants import` vs replaying them with psql in one
#              transaction
#     move     `dnr tenants move` of M rows row_level -> schema, and how
#              long the tenant was not served (held)
#
# Writes bench/transfer.md. Usage: scripts/transfer-bench.sh [--no-install]
# Environment: DNR_BENCH_ROWS (default 100000), DNR_BENCH_MOVE_ROWS
# (default 1000000).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
# shellcheck source=scripts/pg-lib.sh
. "$ROOT/scripts/pg-lib.sh"
install=1
for arg in "$@"; do
  case "$arg" in
    --no-install) install=0 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) pg_die "unknown argument $arg" ;;
  esac
done
N=${DNR_BENCH_ROWS:-100000}
M=${DNR_BENCH_MOVE_ROWS:-1000000}
OUT=$ROOT/bench/transfer.md
command -v sqlite3 >/dev/null || pg_die "sqlite3 not found (scripts/setup.sh installs it)"
cargo build --release -q -p dnr-cli
# Alone: built with dnr-cli, feature unification would break the command.
cargo build --release -q -p dnr-sqlite-ext
DNR=$ROOT/target/release/dnr
LIB=$ROOT/target/release/libdnr
work=$(mktemp -d)
cleanup_work() { rm -rf "$work"; }
trap cleanup_work EXIT
A=11111111-1111-4111-8111-111111111111
U=33333333-3333-4333-8333-333333333333

seconds() {
  local start end
  start=$(date +%s.%N)
  "$@" >"$work/last.out"
  end=$(date +%s.%N)
  echo "$end - $start" | bc -l | xargs printf '%.2f'
}
rate() { echo "$1 / $2" | bc -l | xargs printf '%.0f'; }
ratio() { echo "$1 / $2" | bc -l | xargs printf '%.2f'; }
verdict() { if [ "$(echo "$1 $2 $3" | bc -l)" = 1 ]; then echo "ok"; else echo "over"; fi; }
rows=()
# row WHAT DNR_SECONDS BASELINE_SECONDS ROWS
row() {
  local r
  r=$(rate "$4" "$2")
  rows+=("| $1 | $2 s ($r rows/s) | $3 s ($(rate "$4" "$3") rows/s) | $(ratio "$2" "$3")× | ≥ 100000 rows/s: $(verdict "$r" ">=" 100000) |")
}
project() { # DIR BACKEND MODE [URL]
  mkdir -p "$1/migrations"
  if [ "$2" = postgres ]; then
    printf '[database]\nbackend = "postgres"\npostgres_url = "%s"\ntenant_mode = "%s"\n' "$4" "$3" >"$1/dnr.toml"
  else
    printf '[database]\nbackend = "sqlite"\ntenant_mode = "%s"\n' "$3" >"$1/dnr.toml"
  fi
  printf 'tenancy:\n  mode: %s\n\nentity Task:\n  table: tasks\n  id: int pk\n  title: text\n  owner_id: uuid\n  access:\n    read: true\n    create: owner_id = current_user\n' "$3" >"$1/policies.dnr"
  (cd "$1" && "$DNR" apply >/dev/null)
}

pg_log "SQLite: one tenant of $N rows"
project "$work/s1" sqlite row_level
(cd "$work/s1" && "$DNR" tenants create "$A" >/dev/null)
sqlite3 "$work/s1/.dnr/data.db" ".load $LIB" "BEGIN" "SELECT dnr_set_context('$A', '$U')" \
  "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $N) INSERT INTO tasks (id, title, owner_id) SELECT i, 'task number ' || i, '$U' FROM n" "COMMIT" >/dev/null
s_export=$(cd "$work/s1" && seconds "$DNR" tenants export "$A" --out "$work/s.dnrt")
s_dump=$(seconds sqlite3 "$work/s1/.dnr/data.db" ".mode insert tasks" "SELECT tenant_id, id, title, owner_id FROM _dnr_tasks WHERE tenant_id = '$A'")
cp "$work/last.out" "$work/s.sql"
row "SQLite: export, $N rows" "$s_export" "$s_dump" "$N"
project "$work/s2" sqlite row_level
s_import=$(cd "$work/s2" && seconds "$DNR" tenants import "$work/s.dnrt")
sqlite3 "$work/plain.db" "CREATE TABLE tasks (tenant_id TEXT, id INTEGER, title TEXT, owner_id TEXT, PRIMARY KEY (tenant_id, id))"
s_replay=$(seconds bash -c "{ echo 'BEGIN;'; cat '$work/s.sql'; echo 'COMMIT;'; } | sqlite3 '$work/plain.db'")
row "SQLite: import, $N rows" "$s_import" "$s_replay" "$N"

pg_ensure_tools
[ "$install" = 1 ] && pg_install_extension
pg_start_cluster
trap 'cleanup_work; pg_stop_cluster' EXIT
pg_psql -d postgres <<'SQL'
CREATE ROLE bench_owner LOGIN NOSUPERUSER NOBYPASSRLS;
CREATE DATABASE bench_row OWNER bench_owner;
CREATE DATABASE bench_row2 OWNER bench_owner;
CREATE DATABASE bench_schema OWNER bench_owner;
CREATE DATABASE bench_plain OWNER bench_owner;
SQL
for db in bench_row bench_row2 bench_schema; do pg_psql -d "$db" -c "CREATE EXTENSION dnr" >/dev/null; done
url() { echo "postgresql://bench_owner@localhost/$1?host=$PGHOST&port=$PGPORT"; }
# owner DB SQL: runs SQL (psql's backslash commands too) as the owner
owner() { "$PGBIN/psql" -X -q -t -A -v ON_ERROR_STOP=1 -U bench_owner -d "$1" <<<"$2"; }
pg_log "PostgreSQL: one tenant of $N rows"
project "$work/p1" postgres row_level "$(url bench_row)"
(cd "$work/p1" && "$DNR" tenants create "$A" >/dev/null)
owner bench_row "BEGIN; SELECT dnr.set_context('$A', '$U') \g /dev/null
INSERT INTO tasks (id, title, owner_id) SELECT i, 'task number ' || i, '$U' FROM generate_series(1, $N) i; COMMIT;" >/dev/null
p_export=$(cd "$work/p1" && seconds "$DNR" tenants export "$A" --out "$work/p.dnrt")
p_dump=$(seconds owner bench_row "BEGIN; SELECT dnr.set_context('$A', '$U') \g /dev/null
SELECT format('INSERT INTO tasks (tenant_id, id, title, owner_id) VALUES (%L, %s, %L, %L);', tenant_id, id, title, owner_id) FROM tasks; COMMIT;")
grep '^INSERT' "$work/last.out" >"$work/p.sql"
row "PostgreSQL: export, $N rows" "$p_export" "$p_dump" "$N"
project "$work/p2" postgres row_level "$(url bench_row2)"
p_import=$(cd "$work/p2" && seconds "$DNR" tenants import "$work/p.dnrt")
owner bench_plain "CREATE TABLE tasks (tenant_id uuid, id bigint, title text, owner_id uuid, PRIMARY KEY (tenant_id, id))"
p_replay=$(seconds bash -c "{ echo 'BEGIN;'; cat '$work/p.sql'; echo 'COMMIT;'; } | '$PGBIN/psql' -X -q -U bench_owner -d bench_plain")
row "PostgreSQL: import, $N rows" "$p_import" "$p_replay" "$N"

pg_log "PostgreSQL: a tenant of $M rows moved row_level -> schema"
B=22222222-2222-4222-8222-222222222222
(cd "$work/p1" && "$DNR" tenants create "$B" >/dev/null)
owner bench_row "BEGIN; SELECT dnr.set_context('$B', '$U') \g /dev/null
INSERT INTO tasks (id, title, owner_id) SELECT i, 'task number ' || i, '$U' FROM generate_series(1, $M) i; COMMIT;" >/dev/null
project "$work/p3" postgres schema "$(url bench_schema)"
move=$(cd "$work/p1" && seconds "$DNR" tenants move "$B" --to "$work/p3/dnr.toml")
held=$(grep -o 'not served for [0-9.]* s' "$work/last.out" | grep -o '[0-9.]*')
moved=$(owner bench_schema "BEGIN; SELECT dnr.set_context('$B', '$U') \g /dev/null
SET LOCAL search_path = tenant_$(echo "$B" | tr -d -); SELECT count(*) FROM tasks; COMMIT;" | sed '/^$/d')
[ "$moved" = "$M" ] || pg_die "the move left $moved of $M rows"

{
  echo "## Tenant files and moves (\`dnr tenants export\`, \`import\`, \`move\`)"
  echo
  echo "One tenant of $N narrow rows (id, title, owner_id); each figure one run's wall-clock time beside a naive baseline in the same run (scripts/transfer-bench.sh): an INSERT dump of the tenant's rows (\`sqlite3 .mode insert\`; \`psql\` formatting INSERTs as the owner with the tenant's context) and its replay in one transaction into a plain table."
  echo
  echo "| operation | dnr | naive baseline | ratio | target |"
  echo "|---|---|---|---|---|"
  printf '%s\n' "${rows[@]}"
  echo
  echo "Move of a $M-row tenant, PostgreSQL row_level → schema (held, exported, imported, verified, switched, erased): $move s in all (target ≤ 20 s: $(verdict "$move" "<=" 20)); the tenant was not served for $held s of it (target ≤ 2 s: $(verdict "$held" "<=" 2): the whole copy runs under the hold; a copy while serving, then a short held catch-up, is not built)."
} | tee "$OUT"
