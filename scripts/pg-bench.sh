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
# with the context set four ways:
#   same   simple protocol, same round trip:  SELECT <set context> \; <query>
#   own    simple protocol, own statement:    BEGIN; SELECT <set context>; <query>; COMMIT;
#   pipe   prepared statements, same round trip (pgbench pipeline, one Sync)
#   ownp   prepared statements, own statement in BEGIN ... COMMIT
# The simple protocol parses and plans every statement; prepared statements
# are planned once, so comparing the two separates planning from execution.
# The baseline runs the same shapes without setting a context. Also measured:
# the context call alone (against `SELECT 1`, the round-trip floor), and the
# planner's and executor's time for the point query (EXPLAIN ANALYZE), and
# the server's instructions per transaction (valgrind), which the machine's
# load does not change.
# Before timing, every variant and mode is checked to see its row under the
# context it sets.
#
# Writes bench/pg.md and prints it. Usage: scripts/pg-bench.sh [--no-install]
# Environment: DNR_BENCH_SECONDS (default 3), DNR_BENCH_CLIENTS (default 2),
# DNR_BENCH_ROUNDS (default 5; each cell is the median of its rounds),
# DNR_BENCH_EXPLAIN (EXPLAIN ANALYZE repetitions per variant, default 300),
# DNR_BENCH_INSTRUCTIONS (1: count server instructions under valgrind, 0: do
# not; default: when valgrind is installed),
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

SECONDS_PER_RUN=${DNR_BENCH_SECONDS:-3}
CLIENTS=${DNR_BENCH_CLIENTS:-2}
ROUNDS=${DNR_BENCH_ROUNDS:-5}
EXPLAIN_REPS=${DNR_BENCH_EXPLAIN:-300}
EXPLAIN_WARMUP=20
INSTRUCTIONS=${DNR_BENCH_INSTRUCTIONS:-auto}
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
-- warm the cache: every table and index in shared buffers
CREATE EXTENSION pg_prewarm;
SELECT sum(pg_prewarm(c.oid)) AS blocks_prewarmed
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = 'public' AND c.relkind IN ('r', 'i');
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

# pgbench protocol per mode
protocol() {
  case "$1" in
    same|own) echo simple ;;
    pipe|ownp) echo prepared ;;
  esac
}

# query_text VARIANT QUERY: the query with its table (and the baseline's filter)
query_text() {
  local variant=$1 query=$2 sql where="" where0=""
  if [ "$variant" = plain ]; then
    where=" AND tenant_id = $tenant_expr"
    where0=" WHERE tenant_id = $tenant_expr"
  fi
  sql=$(query_sql "$query")
  sql=${sql//@T@/t_$variant}
  sql=${sql//@W@/$where}
  sql=${sql//@W0@/$where0}
  echo "$sql"
}

# write_script VARIANT MODE QUERY FILE [SQL]: SQL (default: the query) with
# the variant's context set as MODE says
write_script() {
  local variant=$1 mode=$2 query=$3 file=$4 sql=${5:-}
  [ -n "$sql" ] || sql=$(query_text "$variant" "$query")
  {
    echo "\\set k random(1, $((TENANTS - 1)))"
    echo "\\set j random(0, $((ROWS / TENANTS - 1)))"
    echo "\\set id :k + $TENANTS * :j"
    echo "\\set lo random(0, 9899)"
    case "$mode" in
      same)
        if [ "$variant" = plain ]; then
          echo "$sql;"
        else
          echo "$(set_context_sql "$variant") \\; $sql;"
        fi
        ;;
      pipe)
        echo "\\startpipeline"
        [ "$variant" != plain ] && echo "$(set_context_sql "$variant");"
        echo "$sql;"
        echo "\\endpipeline"
        ;;
      own|ownp)
        echo "BEGIN;"
        [ "$variant" != plain ] && echo "$(set_context_sql "$variant");"
        echo "$sql;"
        echo "COMMIT;"
        ;;
    esac
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

# Every variant and mode sees the row it looks up under the context it sets:
# 1 / count(*) fails on a row the policies hide.
pg_log "checking that every variant and mode sees its rows under its context"
for mode in same own pipe ownp; do
  for variant in plain dnr naive select; do
    file="$SCRIPTS/check-$variant-$mode.sql"
    write_script "$variant" "$mode" point "$file" "$(query_text "$variant" point | sed 's/^SELECT \*/SELECT 1 \/ count(*)/')"
    out=$("$PGBIN/pgbench" -n -M "$(protocol "$mode")" -U bench_app -c 1 -t 200 -f "$file" bench 2>&1) \
      || { echo "$out" >&2; pg_die "variant $variant/$mode does not see its rows"; }
  done
done

# The context call alone, against the round-trip floor.
for setter in one dnr dnr4 naive; do
  case "$setter" in
    one) sql="SELECT 1" ;;
    dnr4) sql="SELECT dnr.set_context($tenant_expr, NULL, NULL, true)" ;;
    *) sql=$(set_context_sql "$setter") ;;
  esac
  for mode in same pipe; do
    {
      echo "\\set k random(1, $((TENANTS - 1)))"
      echo "$sql;"
    } >"$SCRIPTS/setter-$setter-$mode.sql"
  done
done

declare -A RUNS LAT
# bench KEY MODE FILE: runs pgbench, adds the latency to KEY's rounds
bench() {
  local key=$1 mode=$2 file=$3 out lat
  out=$("$PGBIN/pgbench" -n -M "$(protocol "$mode")" -U bench_app -c "$CLIENTS" -j "$CLIENTS" -T "$SECONDS_PER_RUN" -f "$file" bench 2>&1) \
    || { echo "$out" >&2; pg_die "pgbench failed for $key"; }
  lat=$(echo "$out" | sed -n 's/^latency average = \([0-9.]*\) ms.*/\1/p')
  [ -n "$lat" ] || { echo "$out" >&2; pg_die "no latency in pgbench output"; }
  RUNS[$key]="${RUNS[$key]:-} $lat"
  printf '  %-22s %8s ms\n' "$key" "$lat" >&2
}
run() {
  local variant=$1 mode=$2 query=$3 file="$SCRIPTS/$1-$2-$3.sql"
  [ -f "$file" ] || write_script "$variant" "$mode" "$query" "$file"
  bench "$variant/$mode/$query" "$mode" "$file"
}
median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# rotate N WORDS...: the words rotated left by N (mod their count)
rotate() {
  local n=$1
  shift
  n=$((n % $#))
  echo "${@:n+1}" "${@:1:n}"
}

# Rounds interleave every cell, so drift in machine load hits all alike, and
# each round starts the variants at a different one, so that none always
# runs in the same position (after the same neighbour); each cell reports
# the median of its rounds.
pg_log "pgbench: $CLIENTS clients, ${SECONDS_PER_RUN}s per run, $ROUNDS rounds"
for round in $(seq 1 "$ROUNDS"); do
  pg_log "round $round of $ROUNDS"
  for mode in same pipe; do
    for setter in $(rotate "$round" one dnr dnr4 naive); do
      bench "setter-$setter/$mode" "$mode" "$SCRIPTS/setter-$setter-$mode.sql"
    done
  done
  for mode in same own pipe ownp; do
    for query in point count range; do
      for variant in $(rotate "$round" plain dnr naive select); do
        run "$variant" "$mode" "$query"
      done
    done
  done
done
for key in "${!RUNS[@]}"; do
  LAT[$key]=$(echo "${RUNS[$key]}" | median)
done

# Planner and executor time of the point query, EXPLAIN ANALYZE in one
# session with the context set for the session (tenant 42), interleaved.
pg_log "EXPLAIN ANALYZE: $EXPLAIN_REPS point queries per variant"
declare -A PLAN EXEC
explain_out=$(
  {
    echo "SELECT dnr.set_context('00000000-0000-0000-0000-000000000042', local => false);"
    echo "SELECT set_config('app.tenant_id', '00000000-0000-0000-0000-000000000042', false);"
    for i in $(seq 1 $((EXPLAIN_WARMUP + EXPLAIN_REPS))); do
      id=$((42 + TENANTS * (i * 7919 % (ROWS / TENANTS))))
      for variant in plain dnr naive select; do
        sql=$(query_text "$variant" point | sed "s/:id/$id/; s/:k/42/")
        echo "EXPLAIN (ANALYZE, TIMING OFF, COSTS OFF, SUMMARY ON) $sql;"
      done
    done
  } | "$PGBIN/psql" -X -q -t -A -v ON_ERROR_STOP=1 -U bench_app -d bench
)
for variant in plain dnr naive select; do
  n=0
  for v in plain dnr naive select; do [ "$v" = "$variant" ] && break; n=$((n + 1)); done
  for what in Planning Execution; do
    value=$(echo "$explain_out" | sed -n "s/^$what Time: \([0-9.]*\) ms\$/\1/p" \
      | awk -v n="$n" -v skip="$EXPLAIN_WARMUP" '(NR - 1) % 4 == n && NR > 4 * skip { printf "%.1f ", $1 * 1000 }' | median)
    value=$(printf '%.1f' "$value")
    if [ "$what" = Planning ]; then PLAN[$variant]=$value; else EXEC[$variant]=$value; fi
  done
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
    same) echo "context set in the same round trip (\`SELECT set_context(...) \\; query\`), simple protocol" ;;
    own) echo "context set as its own statement (\`BEGIN; SELECT set_context(...); query; COMMIT\`), simple protocol" ;;
    pipe) echo "context set in the same round trip, prepared statements (\`-M prepared\`, pgbench pipeline: one Sync)" ;;
    ownp) echo "context set as its own statement (\`BEGIN; ...; COMMIT\`), prepared statements (\`-M prepared\`)" ;;
  esac
}
setter_label() {
  case "$1" in
    one) echo "\`SELECT 1\` (round-trip floor)" ;;
    dnr) echo "(a) \`SELECT dnr.set_context(<uuid>)\`" ;;
    dnr4) echo "(a) \`SELECT dnr.set_context(<uuid>, NULL, NULL, true)\` (no defaulted arguments)" ;;
    naive) echo "(c), (d) \`SELECT set_config('app.tenant_id', <uuid>::text, true)\`" ;;
  esac
}

# The plans, before the cluster is restarted below.
declare -A PLANS
for variant in dnr plain naive select; do
  PLANS[$variant]=$(plan_of "$variant")
done

# Server instructions per transaction: the same cluster restarted under
# valgrind (cachegrind), one client, point query. Unlike latency, this does
# not depend on the machine's load. Each count is the backend's instructions
# for 220 transactions minus those for 20 (which removes connection start-up),
# divided by 200.
declare -A INS
want_instructions=$INSTRUCTIONS
if [ "$want_instructions" = auto ]; then
  if command -v valgrind >/dev/null 2>&1; then want_instructions=1; else want_instructions=0; fi
fi
if [ "$want_instructions" = 1 ]; then
  command -v valgrind >/dev/null 2>&1 || pg_die "DNR_BENCH_INSTRUCTIONS=1 needs valgrind"
  pg_log "restarting the cluster under valgrind to count instructions"
  as_pg "$PGBIN/pg_ctl" -D "$PG_WORK/data" -m fast -w stop >/dev/null
  VG="$PG_WORK/valgrind"
  mkdir -p "$VG"
  [ "$(id -u)" -eq 0 ] && chown postgres: "$VG"
  as_pg bash -c 'exec valgrind --tool=cachegrind --cache-sim=no --trace-children=yes \
      --cachegrind-out-file="$1/cg.%p" "$2/postgres" -D "$3" -p "$4" -k "$5" -c listen_addresses= \
      -c fsync=off -c full_page_writes=off -c synchronous_commit=off -c autovacuum=off \
      -c shared_buffers=1GB -c max_parallel_workers_per_gather=0 >"$1/server.log" 2>&1 &' \
    _ "$VG" "$PGBIN" "$PG_WORK/data" "$PGPORT" "$PG_WORK"
  for _ in $(seq 1 240); do
    "$PGBIN/pg_isready" -q -d bench && break
    sleep 0.5
  done
  "$PGBIN/pg_isready" -q -d bench || { tail -20 "$VG/server.log" >&2; pg_die "PostgreSQL under valgrind did not start"; }
  # every page in shared buffers, so that no count includes reading one
  # (pg_prewarm exists: the load created it)
  pg_psql -d bench \
    -c "SELECT sum(pg_prewarm(c.oid)) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relkind IN ('r', 'i')" >/dev/null
  # Every backend writes its counts when it exits, slowly under valgrind;
  # settle waits until no more files come and all are complete.
  settle() {
    local last="" now
    for _ in $(seq 1 240); do
      now=$(find "$VG" -name 'cg.*' | sort)
      # shellcheck disable=SC2086 # file names without spaces
      if [ "$now" = "$last" ] && [ "$(grep -L '^summary:' $now 2>/dev/null | wc -l)" -eq 0 ]; then
        return 0
      fi
      last=$now
      sleep 1
    done
    pg_die "valgrind's output did not settle"
  }
  # backend_instructions MODE FILE TRANSACTIONS: the instructions of the
  # backend that served pgbench
  backend_instructions() {
    local mode=$1 file=$2 n=$3 before after f v best=0
    settle
    before=$(find "$VG" -name 'cg.*' | sort)
    "$PGBIN/pgbench" -n -M "$(protocol "$mode")" -U bench_app -c 1 -t "$n" -f "$file" bench >/dev/null 2>&1 \
      || pg_die "pgbench under valgrind failed for $file"
    settle
    after=$(find "$VG" -name 'cg.*' | sort)
    # pgbench's own first connection and its client's: the client's is the
    # larger
    for f in $(comm -13 <(echo "$before") <(echo "$after")); do
      v=$(sed -n 's/^summary: \([0-9]*\).*/\1/p' "$f")
      [ "${v:-0}" -gt "$best" ] && best=$v
    done
    [ "$best" -gt 0 ] || pg_die "no instruction count for $file"
    echo "$best"
  }
  per_transaction() {
    local a b
    a=$(backend_instructions "$1" "$2" 20)
    b=$(backend_instructions "$1" "$2" 220)
    echo $(((b - a) / 200))
  }
  for mode in same own pipe ownp; do
    for variant in plain dnr naive select; do
      INS[$variant/$mode]=$(per_transaction "$mode" "$SCRIPTS/$variant-$mode-point.sql")
      pg_log "  instructions $variant/$mode: ${INS[$variant/$mode]}"
    done
  done
  for mode in same pipe; do
    for setter in one dnr dnr4 naive; do
      INS[setter-$setter/$mode]=$(per_transaction "$mode" "$SCRIPTS/setter-$setter-$mode.sql")
      pg_log "  instructions setter-$setter/$mode: ${INS[setter-$setter/$mode]}"
    done
  done
fi

# paired_ratio KEY_A KEY_B: the median over the rounds of A's latency / B's
paired_ratio() {
  paste <(echo "${RUNS[$1]}" | tr ' ' '\n' | grep -v '^$') <(echo "${RUNS[$2]}" | tr ' ' '\n' | grep -v '^$') \
    | awk '$2 > 0 { printf "%.4f ", $1 / $2 }' | median | awk '{ printf "%.2f", $1 }'
}
kilo() { awk -v n="$1" 'BEGIN { printf "%.1fk", n / 1000 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "?" }'; }

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
  echo
  echo "The simple protocol parses and plans every statement; prepared statements (\`-M prepared\`)"
  echo "are planned once per connection, so the difference between the two is planning."
  echo
  echo "## Summary: (a) DNR against hand-written RLS"
  echo
  echo "Latency of (a) divided by that of (c) and of (d), same mode and query (below 1.00 = DNR is"
  echo "faster): the median over the rounds of each round's ratio (the cells of a round run one"
  echo "after the other, so a ratio within a round is less affected by changes in the machine's load)."
  echo
  echo "| mode | point (a)/(c) | point (a)/(d) | count (a)/(c) | count (a)/(d) | range (a)/(c) | range (a)/(d) |"
  echo "|---|---|---|---|---|---|---|"
  for mode in same own pipe ownp; do
    row="| $mode |"
    for query in point count range; do
      row="$row $(paired_ratio "dnr/$mode/$query" "naive/$mode/$query") | $(paired_ratio "dnr/$mode/$query" "select/$mode/$query") |"
    done
    echo "$row"
  done
  if [ "$want_instructions" = 1 ]; then
    echo
    echo "The same ratios for the point query in server instructions per transaction, which"
    echo "the machine's load does not change (see \"Where the time goes\"):"
    echo
    echo "| mode | point (a)/(c) | point (a)/(d) |"
    echo "|---|---|---|"
    for mode in same own pipe ownp; do
      echo "| $mode | $(ratio "${INS[dnr/$mode]}" "${INS[naive/$mode]}") | $(ratio "${INS[dnr/$mode]}" "${INS[select/$mode]}") |"
    done
  fi
  echo
  echo "Modes: **same** and **own** use the simple protocol, **pipe** and **ownp** prepared statements; see the sections below."
  for mode in same own pipe ownp; do
    echo
    echo "## $mode: $(mode_label "$mode")"
    echo
    echo "| table | point | count | range |"
    echo "|---|---|---|---|"
    for variant in plain dnr naive select; do
      row="| $(label "$variant") |"
      for query in point count range; do
        lat=${LAT[$variant/$mode/$query]}
        row="$row $lat ms ($(ratio "$lat" "${LAT[plain/$mode/$query]}")×) |"
      done
      echo "$row"
    done
  done
  echo
  echo "## Where the time goes"
  if [ "$want_instructions" = 1 ]; then
    echo
    echo "### Server instructions per transaction, point query"
    echo
    echo "The backend's instructions per pgbench transaction (valgrind, one client; see the"
    echo "script), and their ratio to (b). These do not depend on the machine's load, unlike"
    echo "the latencies above; they leave out the client, the network and memory stalls."
    echo
    echo "| table | same | own | pipe | ownp |"
    echo "|---|---|---|---|---|"
    for variant in plain dnr naive select; do
      row="| $(label "$variant") |"
      for mode in same own pipe ownp; do
        row="$row $(kilo "${INS[$variant/$mode]}") ($(ratio "${INS[$variant/$mode]}" "${INS[plain/$mode]}")×) |"
      done
      echo "$row"
    done
  fi
  echo
  echo "### The context call alone"
  echo
  echo "One statement per pgbench transaction (an implicit transaction of its own), same"
  echo "clients and rounds as above."
  echo
  if [ "$want_instructions" = 1 ]; then
    echo "| statement | simple protocol | prepared | server instructions, simple | server instructions, prepared |"
    echo "|---|---|---|---|---|"
    for setter in one dnr dnr4 naive; do
      echo "| $(setter_label "$setter") | ${LAT[setter-$setter/same]} ms | ${LAT[setter-$setter/pipe]} ms | $(kilo "${INS[setter-$setter/same]}") | $(kilo "${INS[setter-$setter/pipe]}") |"
    done
  else
    echo "| statement | simple protocol | prepared |"
    echo "|---|---|---|"
    for setter in one dnr dnr4 naive; do
      echo "| $(setter_label "$setter") | ${LAT[setter-$setter/same]} ms | ${LAT[setter-$setter/pipe]} ms |"
    done
  fi
  echo
  echo "\`dnr.set_context\` is a C function that sets its settings with \`set_config_option\`,"
  echo "as \`set_config\` does; clearing a part that is already empty (a user or roles the"
  echo "call leaves out) is skipped, which nobody can observe. Prepared, it costs about what"
  echo "\`set_config\` costs. In the simple protocol, what remains between the two is"
  echo "PostgreSQL's handling of defaulted arguments: every time a call that leaves arguments"
  echo "to their defaults is planned, the parser and the planner each read the defaults back"
  echo "from \`pg_proc.proargdefaults\` (a node tree in text); the explicit form shows the call"
  echo "without that. Prepared statements pay it once. (That is why \`roles\` defaults to NULL:"
  echo "an \`'{}'\` array default cost ~7k more instructions per call to read.)"
  echo
  echo "### Planner and executor, point query"
  echo
  echo "EXPLAIN (ANALYZE, TIMING OFF) of the point query, $EXPLAIN_REPS times per table interleaved, in"
  echo "one session with the context set for the session; medians. Parsing and the rewriter"
  echo "(which adds the policies) are not included."
  echo
  echo "| table | planning | execution |"
  echo "|---|---|---|"
  for variant in plain dnr naive select; do
    echo "| $(label "$variant") | ${PLAN[$variant]} µs | ${EXEC[$variant]} µs |"
  done
  echo
  echo "DNR's readers (\`dnr.current_tenant()\`, ...) are C functions, so the planner has"
  echo "nothing to inline (an SQL-language reader is parsed and analysed again for every query"
  echo "planned). The compiled fence \`tenant_id = (SELECT dnr.current_tenant())\` is an"
  echo "InitPlan that calls the reader once per statement, as (d) evaluates its expression"
  echo "once. (c) has no InitPlan, which saves its set-up on a point lookup, and evaluates its"
  echo "expression where it is used: once as an index condition, but once per row as a filter"
  echo "(a scan that does not use the tenant index, the inner side of a join)."
  echo
  echo "## Plans for the count query (tenant 42)"
  for variant in dnr plain naive select; do
    echo
    echo "$(label "$variant"):"
    echo
    echo '```'
    echo "${PLANS[$variant]}"
    echo '```'
  done
} >"$OUT"

cat "$OUT"
