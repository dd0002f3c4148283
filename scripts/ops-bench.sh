#!/usr/bin/env bash
# Fleet operations of the `dnr` command (issue 13's targets), each beside a
# naive serial loop measured in the same run:
#
#   SQLite, N tenant files (tenant_mode = "database"):
#     tenants create   `dnr tenants create ID...` (one call, parallel)
#                      vs a loop of `dnr tenants create ID`, one per tenant
#     migration        `dnr migrate` with one additive migration (ALTER TABLE
#                      on an enforced table) vs a loop of `sqlite3 FILE` per
#                      tenant running the same ALTER on a plain table copy
#     no-op rerun      `dnr migrate` with nothing to apply vs a loop of
#                      `sqlite3 FILE` reading each file's history
#   PostgreSQL, N tenant schemas (tenant_mode = "schema"):
#     tenants create   `dnr tenants create ID...` (postgres_pool_size 8)
#     migration        `dnr migrate` vs `dnr.migrate_tenants(version, name,
#                      ddl)`, the extension's serial loop in one call
#     no-op rerun      `dnr migrate` vs the same serial loop with nothing to do
#
# Writes bench/ops.md. Usage: scripts/ops-bench.sh [--no-install]
# Environment: DNR_BENCH_TENANTS (default 1000).
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
N=${DNR_BENCH_TENANTS:-1000}
OUT=$ROOT/bench/ops.md
command -v sqlite3 >/dev/null || pg_die "sqlite3 not found (scripts/setup.sh installs it)"
cargo build --release -q -p dnr-cli
DNR=$ROOT/target/release/dnr
work=$(mktemp -d)
cleanup_work() { rm -rf "$work"; }

# seconds CMD...: wall-clock seconds of one run
seconds() {
  local start end
  start=$(date +%s.%N)
  "$@" >/dev/null
  end=$(date +%s.%N)
  echo "$end - $start" | bc -l | xargs printf '%.2f'
}
ratio() { echo "$1 / $2" | bc -l | xargs printf '%.2f'; }
verdict() { if [ "$(echo "$1 <= $2" | bc -l)" = 1 ]; then echo "ok"; else echo "over"; fi; }
uuids() { python3 -c "import uuid, sys; print('\n'.join(str(uuid.uuid4()) for _ in range(int(sys.argv[1]))))" "$1"; }

policy() {
  cat <<DNR
tenancy:
  mode: $1

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
}

rows=()
row() { rows+=("| $1 | $2 s | $3 s | $(ratio "$2" "$3")× | ≤ $4 s: $(verdict "$2" "$4") |"); }

pg_log "SQLite: $N tenant files"
sq=$work/sqlite && mkdir -p "$sq/migrations" "$sq/loop/migrations"
printf '[database]\nbackend = "sqlite"\ntenant_mode = "database"\n' >"$sq/dnr.toml"
policy database >"$sq/policies.dnr"
printf 'ALTER TABLE tasks ADD COLUMN c1 TEXT;\n' >"$sq/migrations/0001_c1.sql"
cp "$sq/dnr.toml" "$sq/policies.dnr" "$sq/loop/"
cp "$sq/migrations/0001_c1.sql" "$sq/loop/migrations/"
uuids "$N" >"$work/ids"
create=$(cd "$sq" && seconds xargs -a "$work/ids" "$DNR" tenants create --json)
create_loop=$(cd "$sq/loop" && seconds bash -c "while read -r id; do '$DNR' tenants create \"\$id\" --json; done <'$work/ids'")
row "SQLite: tenants create, $N tenants" "$create" "$create_loop" 10
printf 'ALTER TABLE tasks ADD COLUMN c2 TEXT;\n' >"$sq/migrations/0002_c2.sql"
migrate=$(cd "$sq" && seconds "$DNR" migrate --json)
# the loop: the same ALTER on each file's table, one sqlite3 process each
migrate_loop=$(cd "$sq/loop" && seconds bash -c 'for f in .dnr/tenants/*/data.db; do sqlite3 "$f" "ALTER TABLE _dnr_tasks ADD COLUMN c2 TEXT"; done')
row "SQLite: additive migration, $N tenants" "$migrate" "$migrate_loop" 10
noop=$(cd "$sq" && seconds "$DNR" migrate --json)
noop_loop=$(cd "$sq/loop" && seconds bash -c 'for f in .dnr/tenants/*/data.db; do sqlite3 "$f" "SELECT max(version) FROM \"_dnr_:migrations\""; done')
row "SQLite: no-op rerun, $N tenants" "$noop" "$noop_loop" 1
applied=$(cd "$sq" && "$DNR" status --json | grep -c '"version":2' || true)
[ "$applied" = "$N" ] || pg_die "SQLite: $applied of $N tenants have version 2"
rm -rf "$sq"

pg_ensure_tools
[ "$install" = 1 ] && pg_install_extension
pg_start_cluster
trap 'cleanup_work; pg_stop_cluster' EXIT
pg_log "PostgreSQL: $N tenant schemas"
pg_psql -d postgres <<'SQL'
CREATE ROLE bench_owner LOGIN NOSUPERUSER NOBYPASSRLS;
CREATE DATABASE bench_ops OWNER bench_owner;
CREATE DATABASE bench_loop OWNER bench_owner;
SQL
pg=$work/pg && mkdir -p "$pg/migrations"
for db in bench_ops bench_loop; do pg_psql -d "$db" -c "CREATE EXTENSION dnr"; done
cat >"$pg/dnr.toml" <<TOML
[database]
backend = "postgres"
postgres_url = "postgresql://bench_owner@localhost/bench_ops?host=$PGHOST&port=$PGPORT"
postgres_pool_size = 8
tenant_mode = "schema"
TOML
policy schema >"$pg/policies.dnr"
(cd "$pg" && "$DNR" apply >/dev/null)
"$PGBIN/psql" -X -q -U bench_owner -d bench_loop -c "SELECT dnr.apply(\$\$$(policy schema)\$\$)" >/dev/null
pg_create=$(cd "$pg" && seconds xargs -a "$work/ids" "$DNR" tenants create --json)
"$PGBIN/psql" -X -q -U bench_owner -d bench_loop -c "SELECT count(dnr.create_tenant(id::uuid, '')) FROM pg_catalog.regexp_split_to_table(\$\$$(cat "$work/ids")\$\$, '\n') AS id" >/dev/null
ddl='ALTER TABLE tasks ADD COLUMN c1 text;'
printf '%s\n' "$ddl" >"$pg/migrations/0001_c1.sql"
pg_migrate=$(cd "$pg" && seconds "$DNR" migrate --json)
loop_sql="SELECT count(*) FILTER (WHERE status = 'applied'), count(*) FILTER (WHERE status = 'skipped') FROM dnr.migrate_tenants(1, 'c1', \$\$$ddl
\$\$)"
pg_loop=$(seconds "$PGBIN/psql" -X -q -U bench_owner -d bench_loop -c "$loop_sql")
row "PostgreSQL: additive migration, $N schemas" "$pg_migrate" "$pg_loop" 20
pg_noop=$(cd "$pg" && seconds "$DNR" migrate --json)
pg_noop_loop=$(seconds "$PGBIN/psql" -X -q -U bench_owner -d bench_loop -c "$loop_sql")
row "PostgreSQL: no-op rerun, $N schemas" "$pg_noop" "$pg_noop_loop" 1
recorded=$(pg_psql -t -A -d bench_ops -c "SELECT count(*) FROM dnr.migrations WHERE version = 1")
[ "$recorded" = "$N" ] || pg_die "PostgreSQL: $recorded of $N schemas recorded the migration"

{
  echo "## Fleet operations (\`dnr tenants create\`, \`dnr migrate\`)"
  echo
  echo "$N tenants; each figure is one run's wall-clock time beside a naive serial loop in the same run (scripts/ops-bench.sh). SQLite: one file per tenant; the loops run one process per tenant (\`dnr tenants create ID\`; \`sqlite3 FILE\` with the ALTER on the storage table, or reading the history). PostgreSQL: one schema per tenant; \`dnr migrate\` with postgres_pool_size = 8 against \`dnr.migrate_tenants(version, name, ddl)\`, the extension's serial loop in one call. PostgreSQL tenants create ($N schemas, one \`dnr tenants create\` call): $pg_create s."
  echo
  echo "| operation | dnr | naive serial loop | ratio | target |"
  echo "|---|---|---|---|---|"
  printf '%s\n' "${rows[@]}"
} | tee "$OUT"
