#!/usr/bin/env bash
# Signed context behind pgbouncer in transaction mode: 16 clients share a
# pool of 3 server connections, each transaction sets one of 40 tenants'
# contexts with its token, and no context ever leaks into another
# transaction (of the same client or another one).
#
# Run by scripts/pg-test.sh (environment: DNR_TEST_DB, a fresh database with
# the extension; PGBIN; PG_WORK, the cluster's directory; PGHOST and PGPORT;
# FIXTURES_DIR). Exits 77 (skipped) when pgbouncer cannot be installed.
#
# Each client runs, as the application role with dnr.require_signed on:
#   BEGIN; set_context_signed(token of tenant i); check; COMMIT;
#     the check: exactly tenant i's 5 rows are visible and the context is
#     tenant i's
#   a statement without a context: no tenant, no rows
#   set_context_signed(token of tenant j) \; check   (one round trip)
#   a statement without a context again
# A failed check divides by zero, which aborts the client, and pgbench
# fails. A control run shows that the checks catch a leak: a role for which
# require_signed is off sets a session-wide context (local => false) on a
# pooled connection, and pgbench must fail.
set -euo pipefail

: "${DNR_TEST_DB:?}" "${PGBIN:?}" "${PG_WORK:?}" "${FIXTURES_DIR:?}" "${PGHOST:?}" "${PGPORT:?}"
server_port=$PGPORT
ROOT=${ROOT:-$(cd "$(dirname "$0")/../../.." && pwd)}
# shellcheck source=scripts/pg-lib.sh
. "$ROOT/scripts/pg-lib.sh"
PGPORT=$server_port

pg_ensure_pgbouncer
if [ -z "$PGBOUNCER" ]; then
  echo "pgbouncer is not installed and could not be installed (apt-get install pgbouncer)"
  exit 77
fi
echo "pgbouncer: $("$PGBOUNCER" --version | head -n 1)"

db=$DNR_TEST_DB
CLIENTS=16
POOL=3
TRANSACTIONS=150

BOUNCER_DIR=$PG_WORK/pgbouncer
stop_pgbouncer() {
  if [ -f "$BOUNCER_DIR/pgbouncer.pid" ]; then
    as_pg kill "$(cat "$BOUNCER_DIR/pgbouncer.pid")" 2>/dev/null || true
    rm -f "$BOUNCER_DIR/pgbouncer.pid" 2>/dev/null || true
  fi
}
cleanup() {
  stop_pgbouncer
  pg_psql -d "$db" -c "DROP OWNED BY signed_control" >/dev/null 2>&1 || true
  pg_psql -d postgres -c "DROP ROLE IF EXISTS signed_control" >/dev/null 2>&1 || true
}
trap cleanup EXIT

pg_psql -d "$db" <<SQL
ALTER DATABASE :"DBNAME" SET session_preload_libraries = 'dnr';
ALTER DATABASE :"DBNAME" SET dnr.require_signed = on;
-- 40 tenants (00000000-0000-0000-0000-0000000000NN), 5 rows each
CREATE TABLE items (id int PRIMARY KEY, tenant_id uuid NOT NULL, n int NOT NULL);
INSERT INTO items
SELECT i, ('00000000-0000-0000-0000-' || lpad(((i - 1) / 5 + 1)::text, 12, '0'))::uuid, i
  FROM generate_series(1, 200) i;
SELECT dnr.enable_tenant_isolation('items');
-- each tenant's token (Ed25519, audience dnr-test, expires 2100-01-01)
CREATE TABLE signed_tokens (i int PRIMARY KEY, tenant uuid NOT NULL, token text NOT NULL);
\copy signed_tokens FROM '$FIXTURES_DIR/signed-tenants.csv' CSV HEADER
GRANT SELECT ON items, signed_tokens TO app;
-- the control: a role for which require_signed is off
CREATE ROLE signed_control LOGIN NOSUPERUSER NOBYPASSRLS;
GRANT SELECT ON items, signed_tokens TO signed_control;
ALTER ROLE signed_control IN DATABASE :"DBNAME" SET dnr.require_signed = off;
SQL

# pgbouncer, as the cluster's OS user, on a Unix socket in the cluster's
# directory; transaction pooling, $POOL server connections per pool.
BOUNCER_PORT=$((server_port + 1))
pg_start_pgbouncer "$BOUNCER_DIR" "$BOUNCER_PORT" "$POOL" 100 signed <<DATABASES
signed = host=$PG_WORK port=$server_port dbname=$db user=app
control = host=$PG_WORK port=$server_port dbname=$db user=signed_control
DATABASES

SCRIPTS=$BOUNCER_DIR/scripts
mkdir -p "$SCRIPTS"
cat >"$SCRIPTS/tenants.sql" <<'BENCH'
\set i random(1, 40)
BEGIN;
SELECT dnr.set_context_signed(token) FROM signed_tokens WHERE i = :i;
SELECT 1 / (count(*) = 5 AND bool_and(tenant_id = (SELECT tenant FROM signed_tokens WHERE i = :i))
            AND dnr.current_tenant() = (SELECT tenant FROM signed_tokens WHERE i = :i))::int FROM items;
COMMIT;
SELECT 1 / (dnr.current_tenant() IS NULL AND NOT EXISTS (SELECT 1 FROM items))::int;
\set j random(1, 40)
SELECT dnr.set_context_signed(token) FROM signed_tokens WHERE i = :j \; SELECT 1 / (count(*) = 5 AND bool_and(tenant_id = (SELECT tenant FROM signed_tokens WHERE i = :j)))::int FROM items;
SELECT 1 / (dnr.current_tenant() IS NULL AND NOT EXISTS (SELECT 1 FROM items))::int;
BENCH
cat >"$SCRIPTS/control.sql" <<'BENCH'
\set i random(1, 40)
SELECT dnr.set_tenant(tenant, local => false) FROM signed_tokens WHERE i = :i;
SELECT 1 / (dnr.current_tenant() IS NULL AND NOT EXISTS (SELECT 1 FROM items))::int;
BENCH

echo "pgbench: $CLIENTS clients x $TRANSACTIONS transactions through pgbouncer (transaction mode, pool of $POOL)"
out=$("$PGBIN/pgbench" -n -h "$BOUNCER_DIR" -p "$BOUNCER_PORT" -U app -c "$CLIENTS" -j 2 -t "$TRANSACTIONS" \
        -f "$SCRIPTS/tenants.sql" signed 2>&1) || { echo "$out"; echo "FAILED: a check failed (a context leaked or a tenant saw other rows)"; exit 1; }
echo "$out" | grep -E '^(number of (transactions actually processed|failed transactions)|latency average)'
expected=$((CLIENTS * TRANSACTIONS))
echo "$out" | grep -q "number of transactions actually processed: $expected/$expected" \
  || { echo "$out"; echo "FAILED: not every transaction ran"; exit 1; }

# The clients really shared server connections.
servers=$(pg_psql -d postgres -At -c "SELECT count(*) FROM pg_stat_activity WHERE datname = '$db' AND usename = 'app'")
echo "server connections of the pool: $servers (clients: $CLIENTS, pool size: $POOL)"
[ "$servers" -ge 1 ] && [ "$servers" -le "$POOL" ] || { echo "FAILED: expected 1 to $POOL server connections"; exit 1; }

# The control: a session-wide context on a pooled connection leaks, and the
# checks catch it.
if "$PGBIN/pgbench" -n -h "$BOUNCER_DIR" -p "$BOUNCER_PORT" -U signed_control -c 4 -j 2 -t 50 \
     -f "$SCRIPTS/control.sql" control >"$BOUNCER_DIR/control.log" 2>&1; then
  cat "$BOUNCER_DIR/control.log"
  echo "FAILED: the control (a leaking session-wide context) was not caught"
  exit 1
fi
grep -m1 -o 'division by zero' "$BOUNCER_DIR/control.log" | sed 's/^/control caught the leak: /'
echo "ok: no context leaked across $expected pooled transactions of 40 tenants"
