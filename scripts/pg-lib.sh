# Shared by scripts/pg-test.sh and scripts/pg-bench.sh: installs the `dnr`
# extension into the machine's PostgreSQL and runs a throwaway cluster.
#
# Source it, then call: pg_ensure_tools; pg_install_extension; pg_start_cluster.
# The cluster is stopped and its directory removed by pg_stop_cluster, which
# pg_start_cluster registers as an EXIT trap.

ROOT=${ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
PG_CONFIG=${PG_CONFIG:-/usr/bin/pg_config}
PGRX_VERSION=0.18.0
# release (default) or debug; both test and bench use the same build.
DNR_PG_PROFILE=${DNR_PG_PROFILE:-release}
PGPORT=${DNR_PG_PORT:-54329}
export PATH="$HOME/.cargo/bin:$PATH"

pg_log() { printf '==> %s\n' "$*" >&2; }
pg_die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Runs a command as the OS user that owns the cluster: PostgreSQL refuses to
# run as root, so root uses the `postgres` account.
as_pg() {
  if [ "$(id -u)" -eq 0 ]; then
    sudo -u postgres -- "$@"
  else
    "$@"
  fi
}

pg_ensure_tools() {
  [ -x "$PG_CONFIG" ] || pg_die "$PG_CONFIG not found (install postgresql-server-dev-15; scripts/setup.sh does)"
  PGBIN=$("$PG_CONFIG" --bindir)
  [ -x "$PGBIN/initdb" ] || pg_die "$PGBIN/initdb not found (install postgresql-15)"
  if ! cargo pgrx --version 2>/dev/null | grep -q "$PGRX_VERSION" || [ ! -f "$HOME/.pgrx/config.toml" ] \
     || { [ "$(id -u)" -eq 0 ] && ! command -v sudo >/dev/null 2>&1; }; then
    pg_log "installing prerequisites with scripts/setup.sh"
    DNR_SKIP_BROWSER=${DNR_SKIP_BROWSER:-1} "$ROOT/scripts/setup.sh"
  fi
  if [ "$(id -u)" -eq 0 ] && ! id postgres >/dev/null 2>&1; then
    pg_die "the postgres OS user does not exist (install postgresql-15)"
  fi
}

# Builds dnr-pgext and installs it (control file, SQL script, dnr.so) into
# the PostgreSQL that $PG_CONFIG describes, with the install script of 0.1.0
# and the update scripts (dnr-pgext/sql/dnr--*.sql) beside pgrx's script of
# the current version. Incremental: cargo rebuilds only what changed.
pg_install_extension() {
  local profile_flag=()
  [ "$DNR_PG_PROFILE" = release ] && profile_flag=(--release)
  local sudo_flag=()
  if [ "$(id -u)" -ne 0 ] && [ ! -w "$("$PG_CONFIG" --pkglibdir)" ]; then
    sudo_flag=(--sudo)
  fi
  pg_log "cargo pgrx install ($DNR_PG_PROFILE) into $("$PG_CONFIG" --pkglibdir)"
  (cd "$ROOT/dnr-pgext" && cargo pgrx install --pg-config "$PG_CONFIG" "${profile_flag[@]}" "${sudo_flag[@]}")
  local extdir
  extdir="$("$PG_CONFIG" --sharedir)/extension"
  pg_log "copying dnr-pgext/sql/dnr--*.sql (earlier versions, updates) into $extdir"
  if [ -w "$extdir" ]; then
    cp "$ROOT"/dnr-pgext/sql/dnr--*.sql "$extdir/"
  else
    sudo cp "$ROOT"/dnr-pgext/sql/dnr--*.sql "$extdir/"
  fi
}

# Starts a fresh cluster in a new temporary directory, listening only on a
# Unix socket in that directory (so it cannot clash with another server).
# Sets PGHOST, PGPORT, PGUSER for psql/pgbench. DNR_PG_CONF names files
# (space-separated) whose lines are appended to postgresql.conf first.
#
# The server runs with RUST_BACKTRACE=1 (DNR_PG_RUST_BACKTRACE overrides it)
# as in a developer's shell, where pgrx would put Rust backtraces into error
# DETAILs: the tests show DNR's errors carry none. (sudo would otherwise
# drop the variable from the environment.)
pg_start_cluster() {
  PG_WORK=$(mktemp -d "${TMPDIR:-/tmp}/dnr-pg.XXXXXX")
  chmod 755 "$PG_WORK"
  if [ "$(id -u)" -eq 0 ]; then
    chown postgres: "$PG_WORK"
  fi
  trap pg_stop_cluster EXIT
  trap 'exit 130' INT TERM
  pg_log "initdb in $PG_WORK/data"
  as_pg "$PGBIN/initdb" -D "$PG_WORK/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >"$PG_WORK/initdb.log" 2>&1 \
    || { cat "$PG_WORK/initdb.log" >&2; pg_die "initdb failed"; }
  local conf
  for conf in ${DNR_PG_CONF:-}; do
    as_pg tee -a "$PG_WORK/data/postgresql.conf" <"$conf" >/dev/null
  done
  as_pg env RUST_BACKTRACE="${DNR_PG_RUST_BACKTRACE:-1}" "$PGBIN/pg_ctl" -D "$PG_WORK/data" -l "$PG_WORK/server.log" -w -t 60 \
    -o "-p $PGPORT -k $PG_WORK -c listen_addresses= -c fsync=off -c full_page_writes=off -c synchronous_commit=off ${DNR_PG_OPTIONS:-}" \
    start >/dev/null || { cat "$PG_WORK/server.log" >&2; pg_die "could not start PostgreSQL"; }
  PG_STARTED=1
  export PGHOST="$PG_WORK" PGPORT PGUSER=postgres
  unset PGDATABASE PGPASSWORD PGOPTIONS PGSERVICE
}

pg_stop_cluster() {
  if [ "${PG_STARTED:-0}" = 1 ]; then
    as_pg "$PGBIN/pg_ctl" -D "$PG_WORK/data" -m immediate -w stop >/dev/null 2>&1 || true
    PG_STARTED=0
  fi
  if [ -n "${PG_WORK:-}" ] && [ -d "$PG_WORK" ] && [ "${DNR_PG_KEEP:-0}" != 1 ]; then
    rm -rf "$PG_WORK"
  fi
}

# psql as the cluster's superuser, quiet, stopping at the first error.
pg_psql() {
  "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 "$@"
}

# pg_start_pgbouncer DIR PORT POOL MAX_CLIENTS PROBE: pgbouncer (found by
# pg_ensure_pgbouncer) as the cluster's OS user, on a Unix socket in DIR,
# transaction pooling with POOL server connections per pool; the
# [databases] lines come on stdin. Returns once database PROBE answers
# through it as role app.
pg_start_pgbouncer() {
  local dir=$1 port=$2 pool=$3 clients=$4 probe=$5
  mkdir -p "$dir"
  {
    echo "[databases]"
    cat
    cat <<INI

[pgbouncer]
listen_addr =
listen_port = $port
unix_socket_dir = $dir
auth_type = any
pool_mode = transaction
default_pool_size = $pool
min_pool_size = 0
reserve_pool_size = 0
max_client_conn = $clients
server_reset_query =
ignore_startup_parameters = extra_float_digits,options
logfile = $dir/pgbouncer.log
pidfile = $dir/pgbouncer.pid
INI
  } >"$dir/pgbouncer.ini"
  [ "$(id -u)" -ne 0 ] || chown -R postgres: "$dir"
  as_pg "$PGBOUNCER" -d "$dir/pgbouncer.ini"
  for _ in $(seq 1 100); do
    "$PGBIN/psql" -X -q -h "$dir" -p "$port" -U app -d "$probe" -c 'SELECT 1' >/dev/null 2>&1 && return 0
    sleep 0.1
  done
}

# pgbouncer for the transaction-pooling tests: installed with apt-get when
# missing (as scripts/setup.sh installs PostgreSQL). Sets PGBOUNCER to its
# path, or to "" when it cannot be had.
pg_ensure_pgbouncer() {
  PGBOUNCER=$(command -v pgbouncer || true)
  [ -n "$PGBOUNCER" ] || [ ! -x /usr/sbin/pgbouncer ] || PGBOUNCER=/usr/sbin/pgbouncer
  if [ -z "$PGBOUNCER" ] && command -v apt-get >/dev/null 2>&1; then
    pg_log "installing pgbouncer with apt-get"
    local sudo=()
    [ "$(id -u)" -eq 0 ] || sudo=(sudo)
    if "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pgbouncer >/dev/null 2>&1 \
       || { "${sudo[@]}" apt-get update -qq >/dev/null 2>&1 \
            && "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pgbouncer >/dev/null 2>&1; }; then
      PGBOUNCER=$(command -v pgbouncer || echo /usr/sbin/pgbouncer)
    fi
  fi
  [ -x "$PGBOUNCER" ] || PGBOUNCER=""
}
