# Shared by scripts/citus-test.sh and tests/citus/*.sh: a throwaway Citus
# cluster (a coordinator and two workers on loopback) with the `dnr`
# extension, on the machine's PostgreSQL 15. Sources scripts/pg-lib.sh.
#
# Source it, then:
#   citus_start_cluster [--no-install]
#       builds/installs Citus when missing (scripts/citus-setup.sh; exits 77
#       when it cannot be had), installs the dnr extension (pg-lib's
#       pg_install_extension, unless --no-install), starts three nodes in one
#       temporary directory and creates $CITUS_DB on each with citus + dnr,
#       the workers registered from the coordinator. Registers
#       citus_stop_cluster as an EXIT trap.
#   citus_psql NODE [psql args...]     NODE: coordinator|c|0, worker1|w1|1,
#       worker2|w2|2, worker3|w3|3 (or a port). Connects as postgres to
#       $CITUS_DB unless -d is given; quiet, stops at the first error.
#   citus_create_db NAME [OWNER]       a database on every node, citus + dnr
#       in each, the workers registered in it (as citus_start_cluster does)
#   citus_drop_db NAME                 drops it on every node
#   citus_add_worker                   starts one more worker (port +3, +4, ...),
#       creates every database of the cluster on it and adds it to each
#       (citus_add_node); sets CITUS_NEW_WORKER_PORT. Shards move only when
#       the caller rebalances.
#   citus_stop_cluster                 stops every node, removes the directory
#
# Exported for callers (and for tests run by scripts/citus-test.sh, which
# share the runner's cluster — citus_attach uses them):
#   CITUS_WORK               the cluster's directory (node0/, node1/, ...: data
#                            directories; nodeN.log: server logs; sockets)
#   CITUS_COORDINATOR_PORT   the coordinator (DNR_CITUS_PORT, default 54340)
#   CITUS_WORKER1_PORT, CITUS_WORKER2_PORT    coordinator port +1, +2
#   CITUS_WORKER_PORTS       every worker's port, space-separated (a file,
#                            $CITUS_WORK/workers, is the source of truth)
#   CITUS_DB                 the default database (default dnr_citus)
#   PGBIN
# Each node listens on 127.0.0.1 (trust authentication; the nodes connect to
# each other over it) and on a Unix socket in $CITUS_WORK. DNR_CITUS_CONF
# names files whose lines are appended to every node's postgresql.conf;
# DNR_CITUS_KEEP=1 keeps the directory.

ROOT=${ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
# shellcheck source=scripts/pg-lib.sh
. "$ROOT/scripts/pg-lib.sh"

CITUS_BASE_PORT=${DNR_CITUS_PORT:-54340}
CITUS_DB=${CITUS_DB:-dnr_citus}
export CITUS_DB

citus_log() { printf '==> citus: %s\n' "$*" >&2; }

# The port of a node name (see the header).
citus_port() {
  case "$1" in
    coordinator|c|0) echo "${CITUS_COORDINATOR_PORT:-$CITUS_BASE_PORT}" ;;
    worker[0-9]|w[0-9]) echo $(( ${CITUS_COORDINATOR_PORT:-$CITUS_BASE_PORT} + ${1##*[a-z]} )) ;;
    [1-9]) echo $(( ${CITUS_COORDINATOR_PORT:-$CITUS_BASE_PORT} + $1 )) ;;
    [0-9][0-9][0-9]*) echo "$1" ;;
    *) pg_die "citus: unknown node $1 (coordinator, worker1, worker2, ... or a port)" ;;
  esac
}

citus_psql() {
  local port
  port=$(citus_port "$1")
  shift
  local db=(-d "$CITUS_DB")
  local a
  for a in "$@"; do
    case "$a" in -d|-d*|--dbname*) db=() ;; esac
  done
  "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$CITUS_WORK" -p "$port" -U postgres "${db[@]}" "$@"
}

# Every node's port, coordinator first.
citus_all_ports() {
  echo "$CITUS_COORDINATOR_PORT"
  cat "$CITUS_WORK/workers"
}

citus_export() {
  CITUS_WORKER_PORTS=$(tr '\n' ' ' <"$CITUS_WORK/workers" | sed 's/ $//')
  CITUS_WORKER1_PORT=$((CITUS_COORDINATOR_PORT + 1))
  CITUS_WORKER2_PORT=$((CITUS_COORDINATOR_PORT + 2))
  export CITUS_WORK CITUS_COORDINATOR_PORT CITUS_WORKER1_PORT CITUS_WORKER2_PORT CITUS_WORKER_PORTS CITUS_DB PGBIN
}

# For a test run inside scripts/citus-test.sh: use the runner's cluster.
# Returns 1 when there is none (the test then starts its own).
citus_attach() {
  [ -n "${CITUS_WORK:-}" ] && [ -f "${CITUS_WORK}/workers" ] && [ -n "${CITUS_COORDINATOR_PORT:-}" ] || return 1
  PGBIN=${PGBIN:-$("$PG_CONFIG" --bindir)}
  citus_export
}

# Builds and installs Citus when missing; exits 77 when it cannot be had.
citus_ensure() {
  local status=0
  bash "$ROOT/scripts/citus-setup.sh" || status=$?
  if [ "$status" = 77 ]; then
    echo "Citus is not installed and its source is not available (see scripts/citus-setup.sh)"
    exit 77
  fi
  [ "$status" = 0 ] || pg_die "scripts/citus-setup.sh failed"
}

# Initialises node N (from the template data directory) and starts it.
citus_start_node() {
  local n=$1 port=$(( CITUS_COORDINATOR_PORT + $1 ))
  as_pg cp -a "$CITUS_WORK/template" "$CITUS_WORK/node$n"
  as_pg env RUST_BACKTRACE="${DNR_PG_RUST_BACKTRACE:-1}" "$PGBIN/pg_ctl" -D "$CITUS_WORK/node$n" \
    -l "$CITUS_WORK/node$n.log" -w -t 60 \
    -o "-p $port -k $CITUS_WORK -c listen_addresses=127.0.0.1" start >/dev/null \
    || { cat "$CITUS_WORK/node$n.log" >&2; pg_die "could not start Citus node $n on port $port"; }
  echo "$n" | as_pg tee -a "$CITUS_WORK/started" >/dev/null
}

# Creates database $1 on the node with port $2 (owner $3), with citus + dnr.
citus_create_db_on() {
  local db=$1 port=$2 owner=${3:-}
  local owner_sql=""
  [ -n "$owner" ] && owner_sql=" OWNER \"$owner\""
  citus_psql "$port" -d postgres -c "CREATE DATABASE \"$db\"$owner_sql"
  citus_psql "$port" -d "$db" -c "SET client_min_messages = warning" \
    -c "CREATE EXTENSION citus" -c "CREATE EXTENSION dnr"
}

citus_create_db() {
  local db=$1 owner=${2:-} port
  for port in $(citus_all_ports); do
    citus_create_db_on "$db" "$port" "$owner"
  done
  citus_psql 0 -d "$db" -c "SET client_min_messages = warning" \
    -c "SELECT citus_set_coordinator_host('127.0.0.1', $CITUS_COORDINATOR_PORT)" >/dev/null
  for port in $(cat "$CITUS_WORK/workers"); do
    citus_psql 0 -d "$db" -c "SET client_min_messages = warning" \
      -c "SELECT citus_add_node('127.0.0.1', $port)" >/dev/null
  done
  echo "$db" | as_pg tee -a "$CITUS_WORK/dbs" >/dev/null
}

citus_drop_db() {
  local db=$1 port
  # Workers first: the coordinator's maintenance daemon holds connections
  # to them for this database.
  for port in $(tac "$CITUS_WORK/workers") "$CITUS_COORDINATOR_PORT"; do
    citus_psql "$port" -d postgres -c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)"
  done
  as_pg sed -i "/^$db\$/d" "$CITUS_WORK/dbs"
}

citus_start_cluster() {
  local install=1
  [ "${1:-}" = --no-install ] && install=0
  pg_ensure_tools
  citus_ensure
  [ "$install" = 1 ] && pg_install_extension
  CITUS_COORDINATOR_PORT=$CITUS_BASE_PORT
  CITUS_WORK=$(mktemp -d "${TMPDIR:-/tmp}/dnr-citus.XXXXXX")
  chmod 755 "$CITUS_WORK"
  if [ "$(id -u)" -eq 0 ]; then
    chown postgres: "$CITUS_WORK"
  fi
  CITUS_OWNER=1
  trap citus_stop_cluster EXIT
  trap 'exit 130' INT TERM
  citus_log "initdb in $CITUS_WORK (coordinator :$CITUS_COORDINATOR_PORT, workers :$((CITUS_COORDINATOR_PORT + 1)) :$((CITUS_COORDINATOR_PORT + 2)))"
  as_pg "$PGBIN/initdb" -D "$CITUS_WORK/template" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 \
    >"$CITUS_WORK/initdb.log" 2>&1 || { cat "$CITUS_WORK/initdb.log" >&2; pg_die "initdb failed"; }
  as_pg tee -a "$CITUS_WORK/template/postgresql.conf" >/dev/null <<'CONF'
# scripts/citus-lib.sh
shared_preload_libraries = 'citus'
fsync = off
full_page_writes = off
synchronous_commit = off
# shard moves (rebalancing) use logical replication
wal_level = logical
max_connections = 200
CONF
  local conf
  for conf in ${DNR_CITUS_CONF:-}; do
    as_pg tee -a "$CITUS_WORK/template/postgresql.conf" <"$conf" >/dev/null
  done
  as_pg touch "$CITUS_WORK/dbs" "$CITUS_WORK/started"
  printf '%s\n' $((CITUS_COORDINATOR_PORT + 1)) $((CITUS_COORDINATOR_PORT + 2)) | as_pg tee "$CITUS_WORK/workers" >/dev/null
  citus_start_node 0
  citus_start_node 1
  citus_start_node 2
  unset PGDATABASE PGPASSWORD PGOPTIONS PGSERVICE PGHOST PGPORT
  citus_export
  citus_log "creating $CITUS_DB on every node (citus, dnr) and registering the workers"
  citus_create_db "$CITUS_DB"
}

citus_add_worker() {
  local n
  n=$(( $(wc -l <"$CITUS_WORK/workers") + 1 ))
  CITUS_NEW_WORKER_PORT=$((CITUS_COORDINATOR_PORT + n))
  citus_log "starting worker $n on :$CITUS_NEW_WORKER_PORT"
  citus_start_node "$n"
  local db
  for db in $(cat "$CITUS_WORK/dbs"); do
    citus_create_db_on "$db" "$CITUS_NEW_WORKER_PORT"
    citus_psql 0 -d "$db" -c "SET client_min_messages = warning" \
      -c "SELECT citus_add_node('127.0.0.1', $CITUS_NEW_WORKER_PORT)" >/dev/null
  done
  echo "$CITUS_NEW_WORKER_PORT" | as_pg tee -a "$CITUS_WORK/workers" >/dev/null
  citus_export
  export CITUS_NEW_WORKER_PORT
}

# Only the shell that started the cluster stops it.
citus_stop_cluster() {
  [ "${CITUS_OWNER:-0}" = 1 ] || return 0
  if [ -n "${CITUS_WORK:-}" ] && [ -f "$CITUS_WORK/started" ]; then
    local n
    for n in $(tac "$CITUS_WORK/started"); do
      as_pg "$PGBIN/pg_ctl" -D "$CITUS_WORK/node$n" -m immediate -w stop >/dev/null 2>&1 || true
    done
  fi
  CITUS_OWNER=0
  if [ -n "${CITUS_WORK:-}" ] && [ -d "$CITUS_WORK" ] && [ "${DNR_CITUS_KEEP:-0}" != 1 ]; then
    rm -rf "$CITUS_WORK"
  fi
}
