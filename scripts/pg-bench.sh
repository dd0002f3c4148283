#!/usr/bin/env bash
# Benchmarks DNR's PostgreSQL enforcement against hand-written alternatives.
#
# 1,000,000 rows over 1,000 tenants (tenant column indexed), queried by an
# ordinary application role with pgbench, for three queries:
#   point   a row by primary key
#   count   count(*) of the tenant's rows
#   range   the tenant's rows in a range of a non-indexed column
# on four tables holding the same data:
#   (a) dnr     RLS compiled by dnr.apply (context via dnr.set_context)
#   (b) plain   no RLS; the query says WHERE tenant_id = '<uuid>' (baseline)
#   (c) naive   RLS: tenant_id = current_setting('app.tenant_id')::uuid
#   (d) select  RLS: tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid)
# with the context set two ways:
#   same round trip   SELECT <set context> \; <query>      (one implicit transaction)
#   own statement     BEGIN; SELECT <set context>; <query>; COMMIT;
# The baseline runs the same shapes without setting a context.
#
# Writes bench/pg.md and prints it. Usage: scripts/pg-bench.sh [--no-install]
# Environment: DNR_BENCH_SECONDS (default 5), DNR_BENCH_CLIENTS (default 2),
# DNR_BENCH_ROUNDS (default 3; each cell is the median of its rounds),
# PG_CONFIG, DNR_PG_PROFILE (default release), DNR_PG_PORT.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
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

SECONDS_PER_RUN=${DNR_BENCH_SECONDS:-5}
CLIENTS=${DNR_BENCH_CLIENTS:-2}
ROUNDS=${DNR_BENCH_ROUNDS:-3}
ROWS=1000000
TENANTS=1000
OUT="$ROOT/bench/pg.md"

pg_ensure_tools
[ "$install" = 1 ] && pg_install_extension
DNR_PG_OPTIONS="-c shared_buffers=1GB -c max_parallel_workers_per_gather=0 ${DNR_PG_OPTIONS:-}"
pg_start_cluster

pg_log "loading $ROWS rows over $TENANTS tenants into four tables"
pg_psql -d postgres <<'SQL'
CREATE ROLE bench_app LOGIN NOSUPERUSER NOBYPASSRLS;
CREATE DATABASE bench;
SQL
pg_psql -d bench -v rows=$ROWS -v tenants=$TENANTS <<'SQL'
CREATE EXTENSION dnr;
-- tenant k is 00000000-0000-0000-0000-<k, 12 digits>; row id belongs to tenant id % tenants
CREATE TABLE t_plain AS
SELECT i AS id,
       ('00000000-0000-0000-0000-' || lpad((i % :tenants)::text, 12, '0'))::uuid AS tenant_id,
       (i::bigint * 7919 % 10000)::int AS amount,
       md5(i::text) AS note
  FROM generate_series(1, :rows) i;
ALTER TABLE t_plain ALTER COLUMN tenant_id SET NOT NULL;
CREATE TABLE t_dnr AS SELECT * FROM t_plain;
CREATE TABLE t_naive AS SELECT * FROM t_plain;
CREATE TABLE t_select AS SELECT * FROM t_plain;
ALTER TABLE t_plain ADD PRIMARY KEY (id);
ALTER TABLE t_dnr ADD PRIMARY KEY (id), ALTER COLUMN tenant_id SET NOT NULL;
ALTER TABLE t_naive ADD PRIMARY KEY (id), ALTER COLUMN tenant_id SET NOT NULL;
ALTER TABLE t_select ADD PRIMARY KEY (id), ALTER COLUMN tenant_id SET NOT NULL;
-- the tenant index: by hand for (b), (c), (d); dnr.apply creates (a)'s
CREATE INDEX ON t_plain (tenant_id);
CREATE INDEX ON t_naive (tenant_id);
CREATE INDEX ON t_select (tenant_id);

-- (a) DNR: the table exists, so the entity declares no fields.
SELECT dnr.apply($policy$
entity Item:
  table: t_dnr
  access:
    read: true
$policy$);
-- (c) naive and (d) wrapped in a scalar subquery, as commonly written by hand
ALTER TABLE t_naive ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON t_naive USING (tenant_id = current_setting('app.tenant_id')::uuid);
ALTER TABLE t_select ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON t_select USING (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid));

GRANT SELECT ON t_plain, t_dnr, t_naive, t_select TO bench_app;
VACUUM (ANALYZE) t_plain, t_dnr, t_naive, t_select;
-- warm the cache
SELECT count(*) FROM t_plain; SELECT count(*) FROM t_dnr; SELECT count(*) FROM t_naive; SELECT count(*) FROM t_select;
SQL

SCRIPTS="$PG_WORK/scripts"
mkdir -p "$SCRIPTS"
chmod 755 "$SCRIPTS"

tenant_expr="('00000000-0000-0000-0000-' || lpad(:k::text, 12, '0'))::uuid"
# query text per query name; @T@ is the table, @W@ the baseline's tenant filter
query_sql() {
  case "$1" in
    point) echo "SELECT * FROM @T@ WHERE id = :id@W@" ;;
    count) echo "SELECT count(*) FROM @T@@W0@" ;;
    range) echo "SELECT id, amount FROM @T@ WHERE amount BETWEEN :lo AND :lo + 100@W@" ;;
  esac
}
set_context_sql() {
  case "$1" in
    dnr) echo "SELECT dnr.set_context($tenant_expr)" ;;
    naive|select) echo "SELECT set_config('app.tenant_id', ($tenant_expr)::text, true)" ;;
  esac
}

# write_script VARIANT MODE QUERY FILE
write_script() {
  local variant=$1 mode=$2 query=$3 file=$4 sql table where where0
  table="t_$variant"
  where="" where0=""
  if [ "$variant" = plain ]; then
    where=" AND tenant_id = $tenant_expr"
    where0=" WHERE tenant_id = $tenant_expr"
  fi
  sql=$(query_sql "$query")
  sql=${sql//@T@/$table}
  sql=${sql//@W@/$where}
  sql=${sql//@W0@/$where0}
  {
    echo "\\set k random(1, $((TENANTS - 1)))"
    echo "\\set j random(0, $((ROWS / TENANTS - 1)))"
    echo "\\set id :k + $TENANTS * :j"
    echo "\\set lo random(0, 9899)"
    if [ "$mode" = same ]; then
      if [ "$variant" = plain ]; then
        echo "$sql;"
      else
        echo "$(set_context_sql "$variant") \\; $sql;"
      fi
    else
      echo "BEGIN;"
      [ "$variant" != plain ] && echo "$(set_context_sql "$variant");"
      echo "$sql;"
      echo "COMMIT;"
    fi
  } >"$file"
}

# Sanity: every variant returns the same rows for a tenant.
pg_log "checking that the four tables agree for a tenant"
check_sql() {
  local variant=$1
  if [ "$variant" = plain ]; then
    echo "SELECT count(*), sum(amount) FROM t_plain WHERE tenant_id = '00000000-0000-0000-0000-000000000042'"
  else
    echo "$(set_context_sql "$variant" | sed "s/:k/42/"); SELECT count(*), sum(amount) FROM t_$variant"
  fi
}
expected=""
for variant in plain dnr naive select; do
  got=$("$PGBIN/psql" -X -q -t -A -U bench_app -d bench -c "$(check_sql "$variant")" | tail -1)
  [ -z "$expected" ] && expected=$got
  [ "$got" = "$expected" ] || pg_die "variant $variant returned $got, expected $expected"
done
[ "$expected" = "1000|$("$PGBIN/psql" -X -q -t -A -d bench -c "SELECT sum(amount) FROM t_plain WHERE tenant_id = '00000000-0000-0000-0000-000000000042'")" ] \
  || pg_die "unexpected tenant count: $expected"

plan_of() {
  local variant=$1
  if [ "$variant" = plain ]; then
    "$PGBIN/psql" -X -q -t -A -U bench_app -d bench -c "EXPLAIN (COSTS OFF) SELECT count(*) FROM t_plain WHERE tenant_id = '00000000-0000-0000-0000-000000000042'"
  else
    "$PGBIN/psql" -X -q -t -A -U bench_app -d bench -c "$(set_context_sql "$variant" | sed "s/:k/42/"); EXPLAIN (COSTS OFF) SELECT count(*) FROM t_$variant" | tail -n +2
  fi
}

declare -A RUNS LAT
run() {
  local variant=$1 mode=$2 query=$3 file="$SCRIPTS/$1-$2-$3.sql" out lat
  [ -f "$file" ] || write_script "$variant" "$mode" "$query" "$file"
  out=$("$PGBIN/pgbench" -n -M simple -U bench_app -c "$CLIENTS" -j "$CLIENTS" -T "$SECONDS_PER_RUN" -f "$file" bench 2>&1) \
    || { echo "$out" >&2; pg_die "pgbench failed for $variant/$mode/$query"; }
  lat=$(echo "$out" | sed -n 's/^latency average = \([0-9.]*\) ms.*/\1/p')
  [ -n "$lat" ] || { echo "$out" >&2; pg_die "no latency in pgbench output"; }
  RUNS[$variant/$mode/$query]="${RUNS[$variant/$mode/$query]:-} $lat"
  printf '  %-7s %-5s %-6s %8s ms\n' "$variant" "$mode" "$query" "$lat" >&2
}
median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# Rounds interleave every cell, so drift in machine load hits all alike;
# each cell reports the median of its rounds.
pg_log "pgbench: $CLIENTS clients, ${SECONDS_PER_RUN}s per run, $ROUNDS rounds"
for round in $(seq 1 "$ROUNDS"); do
  pg_log "round $round of $ROUNDS"
  for mode in same own; do
    for query in point count range; do
      for variant in plain dnr naive select; do
        run "$variant" "$mode" "$query"
      done
    done
  done
done
for key in "${!RUNS[@]}"; do
  LAT[$key]=$(echo "${RUNS[$key]}" | median)
done

label() {
  case "$1" in
    dnr) echo "(a) DNR compiled RLS" ;;
    plain) echo "(b) plain table + hand-written WHERE (baseline)" ;;
    naive) echo "(c) RLS \`current_setting('app.tenant_id')::uuid\`" ;;
    select) echo "(d) RLS \`(select nullif(current_setting(...), '')::uuid)\`" ;;
  esac
}
mode_label() {
  case "$1" in
    same) echo "context set in the same round trip (\`SELECT set_context(...) \\; query\`)" ;;
    own) echo "context set as its own statement (\`BEGIN; SELECT set_context(...); query; COMMIT\`)" ;;
  esac
}

mkdir -p "$(dirname "$OUT")"
{
  echo "# PostgreSQL benchmark: DNR RLS vs hand-written tenant filtering"
  echo
  echo "Generated by \`scripts/pg-bench.sh\` on $(date -u +%Y-%m-%d) — PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}'),"
  echo "$(nproc) cores, $ROWS rows over $TENANTS tenants (tenant column indexed), pgbench"
  echo "\`-c $CLIENTS -j $CLIENTS -T $SECONDS_PER_RUN\`, median of $ROUNDS interleaved rounds per cell, connected as an ordinary"
  echo "role (no superuser, no BYPASSRLS, not the owner). Load average when finished: $(cut -d' ' -f1-3 /proc/loadavg)."
  echo
  echo "Cells: average latency per pgbench transaction, and its ratio to the baseline (b)"
  echo "run in the same mode (the baseline sets no context; lower is better, 1.00× = as fast as"
  echo "the hand-written WHERE clause)."
  echo
  echo "Queries: **point** \`SELECT * FROM t WHERE id = :id\`; **count** \`SELECT count(*) FROM t\`"
  echo "(1,000 rows per tenant); **range** \`SELECT id, amount FROM t WHERE amount BETWEEN :lo AND :lo + 100\`"
  echo "(about 10 rows per tenant; \`amount\` is not indexed)."
  for mode in same own; do
    echo
    echo "## $(mode_label "$mode")"
    echo
    echo "| table | point | count | range |"
    echo "|---|---|---|---|"
    for variant in plain dnr naive select; do
      row="| $(label "$variant") |"
      for query in point count range; do
        lat=${LAT[$variant/$mode/$query]}
        base=${LAT[plain/$mode/$query]}
        ratio=$(awk -v a="$lat" -v b="$base" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "?" }')
        row="$row $lat ms (${ratio}×) |"
      done
      echo "$row"
    done
  done
  echo
  echo "## Plans for the count query (tenant 42)"
  for variant in dnr plain naive select; do
    echo
    echo "$(label "$variant"):"
    echo
    echo '```'
    plan_of "$variant"
    echo '```'
  done
} >"$OUT"

cat "$OUT"
