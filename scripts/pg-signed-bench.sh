#!/usr/bin/env bash
# Benchmarks signed context in PostgreSQL: dnr.set_context_signed(token)
# with a token this backend has verified before (the per-backend cache)
# against dnr.set_context with the same context. Target: <= 1.1x.
#
# The statements, each as its own pgbench transaction, as an ordinary role:
#   one      SELECT 1 (the round-trip floor)
#   ctx      SELECT dnr.set_context('<tenant>')
#   ctx3     SELECT dnr.set_context('<tenant>', NULL, '{member}')
#   signed   SELECT dnr.set_context_signed('<token>'): an Ed25519 token whose
#            claims give the same context as ctx3 (tid, roles; no sub)
#   signedR  the same, with dnr.require_signed on
# Every transaction picks one of 40 tenants (40 script files, one literal
# each), so a backend's cache holds 40 tokens. Each is timed with the
# simple protocol and with prepared statements. Also measured: the server
# time per call (100,000 calls in one statement, EXPLAIN ANALYZE), the first
# verification of a token in PostgreSQL (40 tokens a session has not seen,
# against the same 40 cached), and, when valgrind is installed, the
# server's instructions per transaction (which the machine's load does not
# change).
#
# The keys and tokens are the PUBLIC TEST fixtures of tests/pg/fixtures.
# Writes bench/pg-signed.md and prints it. Usage: scripts/pg-signed-bench.sh
# [--no-install]. Environment: DNR_BENCH_SECONDS (default 3),
# DNR_BENCH_CLIENTS (default 2), DNR_BENCH_ROUNDS (default 5),
# DNR_BENCH_INSTRUCTIONS (1/0; default: when valgrind is installed),
# PG_CONFIG, DNR_PG_PROFILE, DNR_PG_PORT.
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
INSTRUCTIONS=${DNR_BENCH_INSTRUCTIONS:-auto}
CALLS=100000
FIXTURES=$ROOT/tests/pg/fixtures
OUT=$ROOT/bench/pg-signed.md
CELLS="one ctx ctx3 signed signedR"

pg_ensure_tools
[ "$install" = 1 ] && pg_install_extension
DNR_PG_CONF="$FIXTURES/signed-keys.conf ${DNR_PG_CONF:-}"
DNR_PG_OPTIONS="-c max_parallel_workers_per_gather=0 ${DNR_PG_OPTIONS:-}"
pg_start_cluster

pg_log "setting up"
pg_psql -d postgres <<'SQL'
CREATE ROLE bench_app LOGIN NOSUPERUSER NOBYPASSRLS;
CREATE ROLE bench_signed LOGIN NOSUPERUSER NOBYPASSRLS;
CREATE DATABASE bench;
ALTER DATABASE bench SET session_preload_libraries = 'dnr';
ALTER ROLE bench_signed IN DATABASE bench SET dnr.require_signed = on;
SQL
pg_psql -d bench <<SQL
CREATE EXTENSION dnr;
CREATE TABLE bench_tokens (i int PRIMARY KEY, tenant uuid NOT NULL, token text NOT NULL);
\\copy bench_tokens FROM '$FIXTURES/signed-tenants.csv' CSV HEADER
GRANT SELECT ON bench_tokens TO bench_app, bench_signed;
SQL

SCRIPTS="$PG_WORK/scripts"
mkdir -p "$SCRIPTS"
chmod 755 "$SCRIPTS"
echo "SELECT 1;" >"$SCRIPTS/one-1.sql"
while IFS=, read -r i tenant token; do
  echo "SELECT dnr.set_context('$tenant');" >"$SCRIPTS/ctx-$i.sql"
  echo "SELECT dnr.set_context('$tenant', NULL, '{member}');" >"$SCRIPTS/ctx3-$i.sql"
  echo "SELECT dnr.set_context_signed('$token');" >"$SCRIPTS/signed-$i.sql"
  cp "$SCRIPTS/signed-$i.sql" "$SCRIPTS/signedR-$i.sql"
done < <(tail -n +2 "$FIXTURES/signed-tenants.csv")

role_of() { [ "$1" = signedR ] && echo bench_signed || echo bench_app; }
# files_of CELL [single]: pgbench's -f arguments, every script of the cell
# weighted alike (single: the first tenant's alone)
files_of() {
  local f
  if [ "${2:-}" = single ]; then
    printf -- '-f %s ' "$SCRIPTS/$1-1.sql"
    return
  fi
  for f in "$SCRIPTS/$1"-*.sql; do printf -- '-f %s@1 ' "$f"; done
}

# Sanity: each setter sets what it should, and signedR refuses set_context.
pg_log "checking the setters"
check() {
  local role=$1 sql=$2 expected=$3 got
  got=$("$PGBIN/psql" -X -q -t -A -v ON_ERROR_STOP=1 -U "$role" -d bench -c "BEGIN" -c "$sql" \
        -c "SELECT concat_ws('|', dnr.current_tenant(), dnr.current_user_id(), dnr.current_roles())" -c "COMMIT" 2>&1 | grep -v '^$' | tail -1)
  [ "$got" = "$expected" ] || pg_die "$sql: got $got, expected $expected"
}
token7=$(sed -n 's/^7,[^,]*,//p' "$FIXTURES/signed-tenants.csv")
tenant7=00000000-0000-0000-0000-000000000007
check bench_app "$(cat "$SCRIPTS/ctx3-7.sql")" "$tenant7|{member}"
check bench_app "SELECT dnr.set_context_signed('$token7')" "$tenant7|{member}"
check bench_signed "SELECT dnr.set_context_signed('$token7')" "$tenant7|{member}"
"$PGBIN/psql" -X -q -U bench_signed -d bench -c "SELECT dnr.set_context('$tenant7')" >/dev/null 2>&1 \
  && pg_die "set_context was not refused with require_signed on"

declare -A RUNS LAT
bench() {
  local cell=$1 mode=$2 out lat
  # shellcheck disable=SC2046 # the file arguments
  out=$("$PGBIN/pgbench" -n -M "$mode" -U "$(role_of "$cell")" -c "$CLIENTS" -j "$CLIENTS" -T "$SECONDS_PER_RUN" \
        $(files_of "$cell") bench 2>&1) || { echo "$out" >&2; pg_die "pgbench failed for $cell/$mode"; }
  lat=$(echo "$out" | sed -n 's/^latency average = \([0-9.]*\) ms.*/\1/p')
  [ -n "$lat" ] || { echo "$out" >&2; pg_die "no latency in pgbench output"; }
  RUNS[$cell/$mode]="${RUNS[$cell/$mode]:-} $lat"
  printf '  %-16s %8s ms\n' "$cell/$mode" "$lat" >&2
}
median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
rotate() {
  local n=$1
  shift
  n=$((n % $#))
  echo "${@:n+1}" "${@:1:n}"
}
# paired_ratio KEY_A KEY_B: the median over the rounds of A's latency / B's
paired_ratio() {
  paste <(echo "${RUNS[$1]}" | tr ' ' '\n' | grep -v '^$') <(echo "${RUNS[$2]}" | tr ' ' '\n' | grep -v '^$') \
    | awk '$2 > 0 { printf "%.4f ", $1 / $2 }' | median | awk '{ printf "%.2f", $1 }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "?" }'; }

pg_log "pgbench: $CLIENTS clients, ${SECONDS_PER_RUN}s per run, $ROUNDS rounds"
for round in $(seq 1 "$ROUNDS"); do
  pg_log "round $round of $ROUNDS"
  for mode in simple prepared; do
    # shellcheck disable=SC2086 # word list
    for cell in $(rotate "$round" $CELLS); do
      bench "$cell" "$mode"
    done
  done
done
for key in "${!RUNS[@]}"; do
  LAT[$key]=$(echo "${RUNS[$key]}" | median)
done

# Server time per call: CALLS calls in one statement, as the application
# role, in one transaction (the first call verifies the token).
pg_log "server time per call ($CALLS calls per statement)"
tenant1=00000000-0000-0000-0000-000000000001
token1=$(sed -n 's/^1,[^,]*,//p' "$FIXTURES/signed-tenants.csv")
loop_sql() {
  case "$1" in
    one) echo "SELECT count(*) FROM (SELECT 1 FROM generate_series(1, $CALLS)) s" ;;
    ctx) echo "SELECT count(*) FROM (SELECT dnr.set_context('$tenant1') FROM generate_series(1, $CALLS)) s" ;;
    ctx3) echo "SELECT count(*) FROM (SELECT dnr.set_context('$tenant1', NULL, '{member}') FROM generate_series(1, $CALLS)) s" ;;
    signed|signedR) echo "SELECT count(*) FROM (SELECT dnr.set_context_signed('$token1') FROM generate_series(1, $CALLS)) s" ;;
  esac
}
declare -A LOOP_RUNS LOOP
for round in $(seq 1 "$ROUNDS"); do
  # shellcheck disable=SC2086 # word list
  for cell in $(rotate "$round" $CELLS); do
    ms=$("$PGBIN/psql" -X -q -t -A -v ON_ERROR_STOP=1 -U "$(role_of "$cell")" -d bench -c "BEGIN" \
          -c "EXPLAIN (ANALYZE, TIMING OFF, COSTS OFF, SUMMARY ON) $(loop_sql "$cell")" -c "COMMIT" \
          | sed -n 's/^Execution Time: \([0-9.]*\) ms$/\1/p')
    [ -n "$ms" ] || pg_die "no execution time for $cell"
    LOOP_RUNS[$cell]="${LOOP_RUNS[$cell]:-} $(awk -v ms="$ms" -v n="$CALLS" 'BEGIN { printf "%.4f", ms * 1000 / n }')"
  done
done
for cell in $CELLS; do
  LOOP[$cell]=$(echo "${LOOP_RUNS[$cell]}" | median)
done
# the function's own cost: the loop's per-row time above SELECT 1's
fn_cost() { awk -v a="${LOOP[$1]}" -v b="${LOOP[one]}" 'BEGIN { printf "%.3f", a - b }'; }

# First verifications: 40 tokens a new session has not verified, then the
# same 40 again (cached); the first statement of the session verifies
# another token, so that parsing the key set is not counted.
pg_log "first verification of a token, in PostgreSQL"
declare -a FIRST_RUNS
for round in $(seq 1 "$ROUNDS"); do
  out=$("$PGBIN/psql" -X -q -t -A -v ON_ERROR_STOP=1 -U bench_app -d bench -c "BEGIN" \
        -c "SELECT dnr.set_context_signed(token) FROM bench_tokens WHERE i = 40" \
        -c "EXPLAIN (ANALYZE, TIMING OFF, COSTS OFF, SUMMARY ON) SELECT count(*) FROM (SELECT dnr.set_context_signed(token) FROM bench_tokens WHERE i < 40) s" \
        -c "EXPLAIN (ANALYZE, TIMING OFF, COSTS OFF, SUMMARY ON) SELECT count(*) FROM (SELECT dnr.set_context_signed(token) FROM bench_tokens WHERE i < 40) s" \
        -c "COMMIT" | sed -n 's/^Execution Time: \([0-9.]*\) ms$/\1/p' | paste -sd' ')
  FIRST_RUNS+=("$(echo "$out" | awk '{ printf "%.2f", ($1 - $2) * 1000 / 39 }')")
done
FIRST=$(echo "${FIRST_RUNS[*]}" | median)

# Server instructions per transaction, under valgrind (the cluster is
# restarted under it; see scripts/pg-bench.sh): the difference between a
# backend that ran 440 transactions and one that ran 40, per transaction.
# One tenant's statement per cell, so that both backends verify (and
# prepare) the same once and only the per-transaction cost remains: with
# 40 random tokens, the longer run would verify more of them for the first
# time. (A lookup costs the same with 1 or 40 tokens in the cache.)
declare -A INS
if [ "$INSTRUCTIONS" = auto ]; then
  INSTRUCTIONS=0
  command -v valgrind >/dev/null 2>&1 && INSTRUCTIONS=1
fi
if [ "$INSTRUCTIONS" = 1 ]; then
  pg_log "server instructions per transaction (valgrind)"
  as_pg "$PGBIN/pg_ctl" -D "$PG_WORK/data" -m fast -w stop >/dev/null
  VG=$PG_WORK/valgrind
  mkdir -p "$VG"
  [ "$(id -u)" -eq 0 ] && chown postgres: "$VG"
  as_pg bash -c 'exec valgrind --tool=cachegrind --cache-sim=no --trace-children=yes \
      --cachegrind-out-file="$1/cg.%p" "$2/postgres" -D "$3" -p "$4" -k "$5" -c listen_addresses= \
      -c fsync=off -c full_page_writes=off -c synchronous_commit=off -c autovacuum=off \
      -c max_parallel_workers_per_gather=0 >"$1/server.log" 2>&1 &' \
    _ "$VG" "$PGBIN" "$PG_WORK/data" "$PGPORT" "$PG_WORK"
  for _ in $(seq 1 240); do
    "$PGBIN/pg_isready" -q -d bench && break
    sleep 0.5
  done
  "$PGBIN/pg_isready" -q -d bench || { tail -20 "$VG/server.log" >&2; pg_die "PostgreSQL under valgrind did not start"; }
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
  # backend_instructions CELL MODE TRANSACTIONS: the instructions of the
  # backend that served pgbench (its largest new count file)
  backend_instructions() {
    local cell=$1 mode=$2 n=$3 before after f v best=0
    settle
    before=$(find "$VG" -name 'cg.*' | sort)
    # shellcheck disable=SC2046 # the file arguments
    "$PGBIN/pgbench" -n -M "$mode" -U "$(role_of "$cell")" -c 1 -t "$n" $(files_of "$cell" single) bench >/dev/null 2>&1 \
      || pg_die "pgbench under valgrind failed for $cell"
    settle
    after=$(find "$VG" -name 'cg.*' | sort)
    for f in $(comm -13 <(echo "$before") <(echo "$after")); do
      v=$(sed -n 's/^summary: \([0-9]*\).*/\1/p' "$f")
      [ "${v:-0}" -gt "$best" ] && best=$v
    done
    [ "$best" -gt 0 ] || pg_die "no instruction count for $cell"
    echo "$best"
  }
  for mode in simple prepared; do
    for cell in $CELLS; do
      a=$(backend_instructions "$cell" "$mode" 40)
      b=$(backend_instructions "$cell" "$mode" 440)
      INS[$cell/$mode]=$(((b - a) / 400))
      pg_log "  $cell/$mode: ${INS[$cell/$mode]}"
    done
  done
fi

label() {
  case "$1" in
    one) echo "\`SELECT 1\` (round-trip floor)" ;;
    ctx) echo "\`SELECT dnr.set_context(<tenant>)\`" ;;
    ctx3) echo "\`SELECT dnr.set_context(<tenant>, NULL, '{member}')\`" ;;
    signed) echo "\`SELECT dnr.set_context_signed(<token>)\`, cached" ;;
    signedR) echo "the same, \`dnr.require_signed\` on" ;;
  esac
}
kilo() { awk -v n="$1" 'BEGIN { printf "%.1fk", n / 1000 }'; }

mkdir -p "$(dirname "$OUT")"
{
  echo "# PostgreSQL benchmark: signed context"
  echo
  echo "Generated by \`scripts/pg-signed-bench.sh\` on $(date -u +%Y-%m-%d) — PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}'),"
  echo "$(nproc) cores, pgbench \`-c $CLIENTS -j $CLIENTS -T $SECONDS_PER_RUN\`, median of $ROUNDS interleaved rounds per cell, as an"
  echo "ordinary role. Each transaction is one statement for one of 40 tenants; the token is an Ed25519"
  echo "token (tid, roles; 295 bytes) that the backend has verified before, so it comes from the"
  echo "backend's cache. Load average when finished: $(cut -d' ' -f1-3 /proc/loadavg)."
  echo
  echo "## Summary"
  echo
  echo "Ratios of \`set_context_signed\` with a cached token to \`set_context\`, per transaction"
  echo "(one statement); target ≤ 1.1×. \"same context\": \`set_context(<tenant>, NULL, '{member}')\`,"
  echo "which sets what the token's claims give; \"tenant only\": \`set_context(<tenant>)\`. Server"
  echo "instructions do not change with the machine's load; latencies on this shared machine do."
  echo
  echo "| measure | vs same context | vs tenant only | target |"
  echo "|---|---|---|---|"
  if [ "$INSTRUCTIONS" = 1 ]; then
    echo "| server instructions, simple protocol | $(ratio "${INS[signed/simple]}" "${INS[ctx3/simple]}")× | $(ratio "${INS[signed/simple]}" "${INS[ctx/simple]}")× | ≤ 1.1× |"
    echo "| server instructions, prepared statements | $(ratio "${INS[signed/prepared]}" "${INS[ctx3/prepared]}")× | $(ratio "${INS[signed/prepared]}" "${INS[ctx/prepared]}")× | ≤ 1.1× |"
  fi
  echo "| latency, simple protocol | $(paired_ratio signed/simple ctx3/simple)× | $(paired_ratio signed/simple ctx/simple)× | ≤ 1.1× |"
  echo "| latency, prepared statements | $(paired_ratio signed/prepared ctx3/prepared)× | $(paired_ratio signed/prepared ctx/prepared)× | ≤ 1.1× |"
  echo
  echo "| measure | value |"
  echo "|---|---|"
  echo "| server time of a cached \`set_context_signed\` call, above \`SELECT 1\` | $(fn_cost signed) µs (\`set_context\`: same context $(fn_cost ctx3) µs, tenant only $(fn_cost ctx) µs) |"
  echo "| first verification of an Ed25519 token in PostgreSQL (cache miss, the call included) | $FIRST µs (target ≤ 100 µs) |"
  echo
  echo "## Latency per transaction"
  echo
  echo "| statement | simple protocol | prepared | ratio to \`SELECT 1\`, simple | ratio to \`SELECT 1\`, prepared |"
  echo "|---|---|---|---|---|"
  for cell in $CELLS; do
    echo "| $(label "$cell") | ${LAT[$cell/simple]} ms | ${LAT[$cell/prepared]} ms | $(paired_ratio "$cell/simple" one/simple)× | $(paired_ratio "$cell/prepared" one/prepared)× |"
  done
  echo
  if [ "$INSTRUCTIONS" = 1 ]; then
    echo "## Server instructions per transaction (valgrind)"
    echo
    echo "| statement | simple protocol | prepared |"
    echo "|---|---|---|"
    for cell in $CELLS; do
      echo "| $(label "$cell") | $(kilo "${INS[$cell/simple]}") | $(kilo "${INS[$cell/prepared]}") |"
    done
    echo
  fi
  echo "## Server time per call"
  echo
  echo "$CALLS calls in one statement (\`SELECT count(*) FROM (SELECT <call> FROM generate_series(1, $CALLS)) s\`,"
  echo "EXPLAIN ANALYZE), per row:"
  echo
  echo "| statement | per row | above \`SELECT 1\` |"
  echo "|---|---|---|"
  for cell in $CELLS; do
    echo "| $(label "$cell") | ${LOOP[$cell]} µs | $(fn_cost "$cell") µs |"
  done
  echo
  echo "A cached call hashes the token's text (SipHash) to find the verified context, compares"
  echo "the clock with the token's \`exp\`, and sets the three settings as \`set_context\` does; the"
  echo "first call of a token in a backend verifies it (\`dnr_core::signed::verify\`). The cache holds"
  echo "a verification while the keys and options are those that made it (any change of"
  echo "\`dnr.signing_keys\` or a \`dnr.token_*\` setting empties it) and until \`exp\` + leeway."
} >"$OUT"
cat "$OUT"
