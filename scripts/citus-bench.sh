#!/usr/bin/env bash
# Benchmarks DNR's policies on a Citus distributed table against the same
# queries with a hand-written tenant filter, on a local 3-node cluster (a
# coordinator and two workers on loopback; scripts/citus-lib.sh).
#
# One table `items`, created by dnr.apply (Citus flavour: the fence
# `tenant_id = dnr.current_tenant()` inside every permissive policy, keys
# including tenant_id) and distributed by tenant_id (Citus' default 32
# shards), 1,000,000 rows over 1,000 tenants. Two queries:
#   point   a row by id
#   count   count(*) of the tenant's rows
# three ways, each one pgbench transaction on the coordinator:
#   (a)  DNR, context only:  BEGIN; SELECT dnr.set_context(<tenant>, <user>);
#                            <query>; COMMIT   -- as bench_app (ordinary role)
#   (a') DNR, context + the query also says WHERE tenant_id = '<tenant>'
#   (b)  baseline: BEGIN; <query> WHERE tenant_id = '<tenant>'; COMMIT as
#        bench_bypass (BYPASSRLS: the same table without its policies)
# Citus routes a query to one shard only when the query itself compares the
# distribution column with a constant or parameter; the policies' fence
# compares it with a function call, which Citus does not use for pruning.
# Each cell is the median of interleaved rounds (pgbench, simple protocol:
# the tenant is a literal in the query text), reported with its ratio to (b),
# and EXPLAIN's `Task Count` (shards the query is sent to). Before timing,
# every variant is checked to see its tenant's rows and only them.
#
# Writes bench/citus.md and prints it. Exit status 77 when Citus cannot be
# had (scripts/citus-setup.sh finds neither an installed Citus nor its source).
#
# Usage: scripts/citus-bench.sh [--no-install]
# Environment: DNR_BENCH_ROWS (default 1000000), DNR_BENCH_TENANTS (default
# 1000), DNR_BENCH_SECONDS (per run, default 3), DNR_BENCH_CLIENTS (default
# 2), DNR_BENCH_ROUNDS (default 5), DNR_CITUS_BENCH_PORT (coordinator port,
# default 54350; workers +1, +2), PG_CONFIG, DNR_PG_PROFILE.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
# Its own ports, so that it can run beside scripts/citus-test.sh.
export DNR_CITUS_PORT=${DNR_CITUS_BENCH_PORT:-54350}
# shellcheck source=scripts/citus-lib.sh
. "$ROOT/scripts/citus-lib.sh"

install_flag=()
for arg in "$@"; do
  case "$arg" in
    --no-install) install_flag=(--no-install) ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) pg_die "unknown argument $arg" ;;
  esac
done

ROWS=${DNR_BENCH_ROWS:-1000000}
TENANTS=${DNR_BENCH_TENANTS:-1000}
SECONDS_PER_RUN=${DNR_BENCH_SECONDS:-3}
CLIENTS=${DNR_BENCH_CLIENTS:-2}
ROUNDS=${DNR_BENCH_ROUNDS:-5}
OUT="$ROOT/bench/citus.md"
DB=bench
[ "$TENANTS" -ge 2 ] && [ "$ROWS" -ge "$TENANTS" ] || pg_die "need DNR_BENCH_ROWS >= DNR_BENCH_TENANTS >= 2"

# Every node: enough shared buffers for its shards.
conf=$(mktemp)
trap 'rm -f "$conf"' EXIT
printf 'shared_buffers = 512MB\nmax_parallel_workers_per_gather = 0\n' >"$conf"
chmod 644 "$conf"
export DNR_CITUS_CONF="$conf ${DNR_CITUS_CONF:-}"
citus_start_cluster "${install_flag[@]}"
# citus_start_cluster replaced the EXIT trap
trap 'rm -f "$conf"; citus_stop_cluster' EXIT

# Tenant k (0 <= k < TENANTS) is 00000000-0000-0000-0000-1<k, 11 digits>: the
# twelve digits of 100000000000 + k, so that pgbench can write it into a
# literal ('...-:tk'); row i belongs to tenant i % TENANTS.
tenant_of() { printf '00000000-0000-0000-0000-%d' $((100000000000 + $1)); }
USER_ID=aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa
T42=$(tenant_of 42)

citus_log "roles bench_owner, bench_app (ordinary), bench_bypass (BYPASSRLS); database $DB"
citus_psql 0 -c "SET client_min_messages = warning" \
  -c "CREATE ROLE bench_owner LOGIN NOSUPERUSER NOBYPASSRLS" \
  -c "CREATE ROLE bench_app LOGIN NOSUPERUSER NOBYPASSRLS" \
  -c "CREATE ROLE bench_bypass LOGIN NOSUPERUSER BYPASSRLS" >/dev/null
for port in $CITUS_WORKER_PORTS; do
  [ "$(citus_psql "$port" -d postgres -Atc "SELECT count(*) FROM pg_roles WHERE rolname IN ('bench_owner', 'bench_app') AND NOT rolbypassrls OR rolname = 'bench_bypass' AND rolbypassrls")" = 3 ] \
    || pg_die "the roles did not reach worker $port as created"
done
citus_create_db "$DB" bench_owner

# as ROLE: psql on the coordinator as ROLE, reading SQL from stdin
as() { "$PGBIN/psql" -X -q -At -v ON_ERROR_STOP=1 -h "$CITUS_WORK" -p "$CITUS_COORDINATOR_PORT" -U "$1" -d "$DB" "${@:2}"; }

citus_log "dnr.apply as bench_owner, create_distributed_table, $ROWS rows over $TENANTS tenants"
started=$(date +%s)
as bench_owner <<'SQL' >/dev/null
SET client_min_messages = warning;
SELECT dnr.apply($policy$
entity Item:
  table: items
  id: int pk
  amount: int
  note: text
  access:
    read: true
$policy$);
SELECT create_distributed_table('items', 'tenant_id');
GRANT SELECT ON items TO bench_app, bench_bypass;
SQL
# Loaded as the superuser (FORCE ROW LEVEL SECURITY binds the owner too).
citus_psql 0 -d "$DB" -v rows="$ROWS" -v tenants="$TENANTS" >/dev/null <<'SQL'
SET client_min_messages = warning;
INSERT INTO items (tenant_id, id, amount, note)
SELECT ('00000000-0000-0000-0000-' || (100000000000 + i % :tenants))::uuid,
       i, (i::bigint * 7919 % 10000)::int, md5(i::text)
  FROM generate_series(1, :rows) i;
VACUUM (ANALYZE) items;
CREATE EXTENSION pg_prewarm;
SQL
for port in $CITUS_WORKER_PORTS; do
  citus_psql "$port" -d "$DB" -c "SET citus.override_table_visibility = off" \
    -c "SELECT sum(pg_prewarm(c.oid)) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relkind IN ('r', 'i') AND c.relname LIKE 'items%'" >/dev/null
done
SHARDS=$(citus_psql 0 -d "$DB" -Atc "SELECT count(*) FROM pg_dist_shard WHERE logicalrelid = 'items'::regclass")
INDEXES=$(citus_psql 0 -d "$DB" -Atc "SELECT string_agg(pg_get_indexdef(indexrelid), '; ' ORDER BY indexrelid) FROM pg_index WHERE indrelid = 'items'::regclass")
POLICIES=$(citus_psql 0 -d "$DB" -Atc "SELECT string_agg(format('%s %s (%s): %s', polname, CASE WHEN polpermissive THEN 'permissive' ELSE 'restrictive' END, polcmd, pg_get_expr(polqual, polrelid)), '; ' ORDER BY polname) FROM pg_policy WHERE polrelid = 'items'::regclass")
citus_log "loaded in $(( $(date +%s) - started )) s: $SHARDS shards; indexes: $INDEXES"

VARIANTS="ctx both base floor"
QUERIES="point count"
label() {
  case "$1" in
    ctx) echo "(a) DNR, context only" ;;
    both) echo "(a') DNR, context + \`WHERE tenant_id\`" ;;
    base) echo "(b) BYPASSRLS + \`WHERE tenant_id\` (baseline)" ;;
    floor) echo "(b1) (b) + \`SELECT 1\` (the round trips of (a'))" ;;
  esac
}
role_of() { case "$1" in base|floor) echo bench_bypass ;; *) echo bench_app ;; esac; }
# query_text VARIANT QUERY TENANT_LITERAL ID: the query's text
query_text() {
  local variant=$1 query=$2 t=$3 id=$4 filter=""
  [ "$variant" = ctx ] || filter="tenant_id = '$t'"
  case "$query" in
    point) echo "SELECT * FROM items WHERE id = $id${filter:+ AND $filter}" ;;
    count) echo "SELECT count(*) FROM items${filter:+ WHERE $filter}" ;;
  esac
}
# transaction VARIANT SQL TENANT_LITERAL [psql]: SQL as one transaction,
# with the context set first under DNR (for psql: without its output)
transaction() {
  echo "BEGIN;"
  local end=";"
  [ -z "${4:-}" ] || end=" \\g /dev/null"
  case "$1" in
    base) ;;
    floor) echo "SELECT 1$end" ;;
    *) echo "SELECT dnr.set_context('$3', '$USER_ID')$end" ;;
  esac
  echo "$2;"
  echo "COMMIT;"
}

SCRIPTS="$CITUS_WORK/scripts"
as_pg mkdir -p "$SCRIPTS"
as_pg chmod 777 "$SCRIPTS"
# pgbench substitutes :tk inside the literal (simple protocol).
per_tenant=$((ROWS / TENANTS))
for variant in $VARIANTS; do
  for query in $QUERIES; do
    {
      echo "\\set k random(1, $((TENANTS - 1)))"
      echo "\\set tk 100000000000 + :k"
      echo "\\set id :k + $TENANTS * random(0, $((per_tenant - 1)))"
      transaction "$variant" "$(query_text "$variant" "$query" "00000000-0000-0000-0000-:tk" ":id")" "00000000-0000-0000-0000-:tk"
    } >"$SCRIPTS/$variant-$query.sql"
  done
done

pgb() { "$PGBIN/pgbench" -n -M simple -h "$CITUS_WORK" -p "$CITUS_COORDINATOR_PORT" "$@" "$DB"; }

# Checks: every variant sees tenant 42's rows, the same count and sum; the
# point script fails (1 / 0) on a row it does not see; under DNR another
# tenant's row and a filter naming another tenant find nothing.
citus_log "checking what every variant sees"
expected="$per_tenant|$(citus_psql 0 -d "$DB" -Atc "SELECT sum(amount) FROM items WHERE tenant_id = '$T42'")"
for variant in $VARIANTS; do
  sql=$(query_text "$variant" count "$T42" 0 | sed 's/count(\*)/count(*), sum(amount)/')
  got=$(transaction "$variant" "$sql" "$T42" psql | as "$(role_of "$variant")" | tail -1)
  [ "$got" = "$expected" ] || pg_die "$(label "$variant") sees $got for tenant 42, expected $expected"
  sed 's/SELECT \* FROM/SELECT 1 \/ count(*) FROM/' "$SCRIPTS/$variant-point.sql" >"$SCRIPTS/check-$variant.sql"
  out=$(pgb -U "$(role_of "$variant")" -c 1 -t 50 -f "$SCRIPTS/check-$variant.sql" 2>&1) \
    || { echo "$out" >&2; pg_die "$(label "$variant") does not see the rows it looks up"; }
done
other=$(transaction ctx "SELECT count(*) FROM items WHERE id = $((43 + TENANTS))" "$T42" psql | as bench_app | tail -1)
[ "$other" = 0 ] || pg_die "DNR: tenant 42 sees another tenant's row"
other=$(transaction ctx "SELECT count(*) FROM items WHERE tenant_id = '$(tenant_of 43)'" "$T42" psql | as bench_app | tail -1)
[ "$other" = 0 ] || pg_die "DNR: tenant 42 sees rows under a filter naming tenant 43"
[ "$(as bench_app -c "SELECT count(*) FROM items")" = 0 ] || pg_die "DNR: rows visible without a context"

# EXPLAIN of every cell for tenant 42, as its role and in its transaction.
declare -A TASKS PLAN
for variant in $VARIANTS; do
  for query in $QUERIES; do
    sql=$(query_text "$variant" "$query" "$T42" $((42 + TENANTS * 7)))
    PLAN[$variant/$query]=$(transaction "$variant" "EXPLAIN (COSTS OFF) $sql" "$T42" psql | as "$(role_of "$variant")")
    TASKS[$variant/$query]=$(sed -n 's/.*Task Count: \([0-9]*\).*/\1/p' <<<"${PLAN[$variant/$query]}" | head -1)
    [ -n "${TASKS[$variant/$query]}" ] || TASKS[$variant/$query]="?"
    citus_log "  $variant/$query: ${TASKS[$variant/$query]} task(s)"
  done
done

# Two more shapes, EXPLAIN only (tenant 42, as bench_app under the context):
# the query naming the context reader itself, and a prepared statement with
# the tenant as a parameter (EXPLAIN EXECUTE 7 times: PostgreSQL switches to
# a generic plan after 5 executions; the last one is reported).
other_tasks() { sed -n 's/.*Task Count: \([0-9]*\).*/\1/p' | tail -1; }
TASKS[reader]=$(transaction ctx "EXPLAIN (COSTS OFF) SELECT count(*) FROM items WHERE tenant_id = dnr.current_tenant()" "$T42" psql \
  | as bench_app | other_tasks)
TASKS[param]=$({
  echo "BEGIN;"
  echo "SELECT dnr.set_context('$T42', '$USER_ID') \\g /dev/null"
  echo "PREPARE c(uuid) AS SELECT count(*) FROM items WHERE tenant_id = \$1;"
  for _ in 1 2 3 4 5 6 7; do echo "EXPLAIN (COSTS OFF) EXECUTE c('$T42');"; done
  echo "COMMIT;"
} | as bench_app | other_tasks)
citus_log "  WHERE tenant_id = dnr.current_tenant(): ${TASKS[reader]:-?} task(s); prepared WHERE tenant_id = \$1: ${TASKS[param]:-?} task(s)"

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
rotate() {
  local n=$1
  shift
  n=$((n % $#))
  echo "${@:n+1}" "${@:1:n}"
}

declare -A RUNS LAT
cells=()
for query in $QUERIES; do for variant in $VARIANTS; do cells+=("$variant/$query"); done; done
# warm-up: every cell once, briefly
for cell in "${cells[@]}"; do
  pgb -U "$(role_of "${cell%/*}")" -c "$CLIENTS" -j "$CLIENTS" -T 1 -f "$SCRIPTS/${cell%/*}-${cell#*/}.sql" >/dev/null 2>&1 \
    || pg_die "pgbench failed for $cell"
done
citus_log "timing: $ROUNDS rounds of ${#cells[@]} cells, ${SECONDS_PER_RUN} s each, $CLIENTS clients"
for round in $(seq 1 "$ROUNDS"); do
  for cell in $(rotate "$round" "${cells[@]}"); do
    out=$(pgb -U "$(role_of "${cell%/*}")" -c "$CLIENTS" -j "$CLIENTS" -T "$SECONDS_PER_RUN" \
      -f "$SCRIPTS/${cell%/*}-${cell#*/}.sql" 2>&1) || { echo "$out" >&2; pg_die "pgbench failed for $cell"; }
    lat=$(sed -n 's/^latency average = \([0-9.]*\) ms.*/\1/p' <<<"$out")
    [ -n "$lat" ] || { echo "$out" >&2; pg_die "no latency in pgbench output for $cell"; }
    RUNS[$cell]="${RUNS[$cell]:-} $lat"
  done
  citus_log "  round $round done"
done
for cell in "${cells[@]}"; do LAT[$cell]=$(median <<<"${RUNS[$cell]}"); done
# paired_ratio A B: the median over the rounds of A's latency / B's
paired_ratio() {
  paste <(tr ' ' '\n' <<<"${RUNS[$1]}" | grep -v '^$') <(tr ' ' '\n' <<<"${RUNS[$2]}" | grep -v '^$') \
    | awk '$2 > 0 { printf "%.4f ", $1 / $2 }' | median | awk '{ printf "%.2f", $1 }'
}
ms() { awk -v v="$1" 'BEGIN { printf "%.2f ms", v }'; }

mkdir -p "$(dirname "$OUT")"
{
  echo "# Citus benchmark: DNR policies vs a hand-written tenant filter on a distributed table"
  echo
  echo "Generated by \`scripts/citus-bench.sh\` on $(date -u +%Y-%m-%d) — PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}'),"
  echo "Citus $(citus_psql 0 -d "$DB" -Atc "SELECT extversion FROM pg_extension WHERE extname = 'citus'"), a coordinator and two workers on loopback on one machine ($(nproc) cores),"
  echo "$ROWS rows over $TENANTS tenants in one table distributed by \`tenant_id\` ($SHARDS shards), pgbench"
  echo "\`-M simple -c $CLIENTS -j $CLIENTS -T $SECONDS_PER_RUN\` against the coordinator, median of $ROUNDS interleaved"
  echo "rounds per cell. Load average when finished: $(cut -d' ' -f1-3 /proc/loadavg)."
  echo
  echo "- (a) DNR, context only: \`BEGIN; SELECT dnr.set_context(<tenant>, <user>); <query>; COMMIT\` as an ordinary role."
  echo "- (a') the same, the query also saying \`WHERE tenant_id = '<tenant>'\`."
  echo "- (b) baseline: \`BEGIN; <query> WHERE tenant_id = '<tenant>'; COMMIT\` on the same table as a \`BYPASSRLS\` role (no policies)."
  echo "- (b1) (b) with \`SELECT 1\` where (a') sets the context: the same round trips as (a'), so (a')/(b1) is the"
  echo "  cost of DNR's context and policies apart from the extra statement."
  echo
  echo "Cells: average latency per transaction, its ratio to (b) (median of the rounds' ratios; lower is"
  echo "better), and EXPLAIN's \`Task Count\`: the shards the coordinator sends the query to."
  echo
  echo "| query | $(label ctx) | $(label both) | $(label base) | $(label floor) |"
  echo "|---|---|---|---|---|"
  for query in $QUERIES; do
    case "$query" in
      point) q="point: \`SELECT * FROM items WHERE id = \$1\`" ;;
      count) q="count: \`SELECT count(*) FROM items\`" ;;
    esac
    row="| $q"
    for variant in $VARIANTS; do
      if [ "$variant" = base ]; then r="1.00×"; else r="$(paired_ratio "$variant/$query" "base/$query")×"; fi
      row="$row | $(ms "${LAT[$variant/$query]}") ($r), ${TASKS[$variant/$query]} task$([ "${TASKS[$variant/$query]}" = 1 ] || echo s)"
    done
    echo "$row |"
  done
  echo
  echo "(a') / (b1), the same round trips: point $(paired_ratio both/point floor/point)×, count $(paired_ratio both/count floor/count)×."
  echo
  echo "## Routing: the recommended query shape"
  echo
  echo "Citus picks the shards of a query on the coordinator, from the query's own"
  echo "\`WHERE\`: a comparison of the distribution column with a constant or a parameter."
  echo "DNR's fence (\`tenant_id = dnr.current_tenant()\` inside every policy) does keep every"
  echo "other tenant's rows out, on every shard, but Citus does not prune with it: the"
  echo "policies are security quals and \`dnr.current_tenant()\` is a function call, not a"
  echo "constant. So a query under the context alone (a) goes to all ${TASKS[ctx/count]} shards, each of"
  echo "which runs it with the fence (an index probe per shard) and returns nothing but"
  echo "the tenant's rows; it is correct but costs one task per shard, run over the"
  echo "workers' connections (each connection of the transaction first gets the"
  echo "forwarded \`SET LOCAL\` of the context), and the coordinator merges ${TASKS[ctx/count]} results."
  echo
  echo "Naming the reader in the query does not help either: \`... WHERE tenant_id ="
  echo "dnr.current_tenant()\` goes to ${TASKS[reader]:-?} shards. A prepared statement with the tenant"
  echo "as a parameter, \`... WHERE tenant_id = \$1\`, goes to ${TASKS[param]:-?} (also with the generic"
  echo "plan PostgreSQL uses after five executions; Citus prunes when it executes)."
  echo
  echo "For single-shard routing, set the context **and** name the tenant in the query:"
  echo
  echo '```sql'
  echo "BEGIN;"
  echo "SELECT dnr.set_context(\$1, \$2);                             -- tenant, user"
  echo "SELECT ... FROM items WHERE tenant_id = \$1 AND id = \$3;       -- same tenant as a literal or parameter"
  echo "COMMIT;"
  echo '```'
  echo
  echo "The filter is for routing only; the policies still decide what is visible (a"
  echo "filter naming another tenant finds nothing). In joins, name \`tenant_id = \$1\` for"
  echo "each distributed table, or join co-located tables on \`tenant_id\`."
  echo
  echo "## Table and policies"
  echo
  echo "- indexes: \`$INDEXES\`"
  echo "- policies: \`$POLICIES\`"
  echo
  echo "## Plans (tenant 42)"
  for query in $QUERIES; do
    for variant in ctx both base; do
      echo
      echo "$(label "$variant"), $query:"
      echo
      echo '```'
      echo "${PLAN[$variant/$query]}"
      echo '```'
    done
  done
} >"$OUT"
cat "$OUT"
