#!/usr/bin/env bash
# DNR on Citus, continued:
#   - a worker joins and the shards are rebalanced onto it: the moved
#     shards keep DNR's policies (fence inside each) and every tenant still
#     reads exactly its rows; re-apply after the move reaches them too;
#   - pgbouncer in transaction mode in front of the coordinator: 12 clients
#     share 3 server connections, each transaction sets one of 20 tenants'
#     context and must see exactly that tenant's rows, and a statement
#     after COMMIT sees nothing (a leaked context divides by zero).
#
# Run by scripts/citus-test.sh (or alone). Exit 0 passed, 77 skipped.
set -euo pipefail
ROOT=${ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
# shellcheck source=scripts/citus-lib.sh
. "$ROOT/scripts/citus-lib.sh"
citus_attach || citus_start_cluster "$@"

fail() { printf 'FAIL: %s\n' "$*"; exit 1; }
ok() { printf 'ok: %s\n' "$*"; }
db=dnr_rb
work=$(mktemp -d)
chmod 755 "$work"
q() { "$PGBIN/psql" -X -q -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$CITUS_COORDINATOR_PORT" -U "$1" -d "$db" -c "$2" 2>&1; }

# Roles are created at top level: Citus propagates (and tracks) them then.
for role in dnr_owner app; do
  [ "$(citus_psql 0 -Atc "SELECT count(*) FROM pg_roles WHERE rolname = '$role'")" = 1 ] \
    || citus_psql 0 -c "CREATE ROLE $role LOGIN NOSUPERUSER NOBYPASSRLS" >/dev/null
done
citus_create_db "$db" dnr_owner

POLICY="
entity Item:
  table: items
  id: int pk
  n: int
  access:
    read: true
    create: true
"
q dnr_owner "SELECT dnr.apply(\$dnr\$$POLICY\$dnr\$)" >/dev/null
q dnr_owner "SET client_min_messages = warning; SELECT create_distributed_table('items', 'tenant_id')" >/dev/null
q dnr_owner "GRANT SELECT, INSERT ON items TO app" >/dev/null
# 20 tenants (00000000-0000-4000-8000-0000000000NN), 5 rows each
for t in $(seq 1 20); do
  tenant=$(printf '00000000-0000-4000-8000-%012d' "$t")
  rows=""
  for i in 1 2 3 4 5; do rows="$rows${rows:+, }($((t * 100 + i)), $i)"; done
  "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$CITUS_COORDINATOR_PORT" -U app -d "$db" >/dev/null <<SQL
BEGIN;
SELECT dnr.set_context('$tenant') \g /dev/null
INSERT INTO items (id, n) VALUES $rows;
COMMIT;
SQL
done
# every tenant reads exactly its 5 rows: the number of tenants that do
each_sees_own() {
  local t tenant good=0 out
  for t in $(seq 1 20); do
    tenant=$(printf '00000000-0000-4000-8000-%012d' "$t")
    out=$("$PGBIN/psql" -X -q -At -h "${1:-127.0.0.1}" -p "${2:-$CITUS_COORDINATOR_PORT}" -U app -d "${3:-$db}" 2>&1 <<SQL
BEGIN;
SELECT dnr.set_context('$tenant') \g /dev/null
SELECT count(*) = 5 AND bool_and(tenant_id = '$tenant') FROM items;
COMMIT;
SQL
)
    [ "$out" = t ] && good=$((good + 1))
  done
  echo "$good"
}
[ "$(each_sees_own)" = 20 ] || fail "before the move, not every tenant sees exactly its rows"
ok "20 tenants see exactly their rows"

citus_add_worker
new=$CITUS_NEW_WORKER_PORT
citus_psql 0 -d "$db" -c "SET client_min_messages = warning" -c "SELECT citus_rebalance_start(shard_transfer_mode => 'block_writes')" >/dev/null
citus_psql 0 -d "$db" -c "SET client_min_messages = warning" -c "SELECT citus_rebalance_wait()" >/dev/null
moved=$(citus_psql 0 -d "$db" -Atc "SELECT count(*) FROM citus_shards WHERE table_name = 'items'::regclass AND nodeport = $new")
[ "$moved" -gt 0 ] || fail "no shard moved to the new worker :$new"
fenced=$(citus_psql "$new" -d "$db" -At -c "SET citus.override_table_visibility = off" -c "SELECT count(DISTINCT c.oid) FROM pg_class c JOIN pg_policy p ON p.polrelid = c.oid WHERE c.relname ~ '^items_[0-9]+\$' AND p.polname = 'dnr_read' AND pg_get_expr(p.polqual, p.polrelid) LIKE '%current_tenant()%'")
[ "$fenced" = "$moved" ] || fail "$moved shards moved to :$new but $fenced carry DNR's fenced read policy"
ok "$moved shards moved to the new worker, each with DNR's policies"
[ "$(each_sees_own)" = 20 ] || fail "after the move, not every tenant sees exactly its rows"
ok "after rebalancing, 20 tenants see exactly their rows"
POLICY2="${POLICY/create: true/create: n > 0}"
out=$(q dnr_owner "SELECT dnr.apply(\$dnr\$$POLICY2\$dnr\$)")
case "$out" in *"applied 1 entity"*) ;; *) fail "re-apply after the move: $out" ;; esac
updated=$(citus_psql "$new" -d "$db" -At -c "SET citus.override_table_visibility = off" -c "SELECT count(*) FROM pg_class c JOIN pg_policy p ON p.polrelid = c.oid WHERE c.relname ~ '^items_[0-9]+\$' AND p.polname = 'dnr_create' AND pg_get_expr(p.polwithcheck, p.polrelid) LIKE '%n > 0%'")
[ "$updated" = "$moved" ] || fail "re-apply reached $updated of the $moved moved shards"
refused=$("$PGBIN/psql" -X -q -At -h 127.0.0.1 -p "$CITUS_COORDINATOR_PORT" -U app -d "$db" 2>&1 <<SQL || true
BEGIN;
SELECT dnr.set_context('00000000-0000-4000-8000-000000000001') \g /dev/null
INSERT INTO items (id, n) VALUES (9999, 0);
COMMIT;
SQL
)
case "$refused" in *"row-level security"*) ok "re-apply after the move replaces the policies on every shard" ;; *) fail "the new create rule: $refused" ;; esac

pg_ensure_pgbouncer
if [ -z "$PGBOUNCER" ]; then
  echo "pgbouncer is not installed; skipping its part"
  exit 0
fi
CLIENTS=12
POOL=3
TRANSACTIONS=60
bport=$((CITUS_COORDINATOR_PORT + 20))
cat >"$work/pgbouncer.ini" <<INI
[databases]
citus = host=127.0.0.1 port=$CITUS_COORDINATOR_PORT dbname=$db user=app

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $bport
unix_socket_dir =
auth_type = any
pool_mode = transaction
default_pool_size = $POOL
min_pool_size = 0
reserve_pool_size = 0
max_client_conn = 100
server_reset_query =
ignore_startup_parameters = extra_float_digits,options
logfile = $work/pgbouncer.log
pidfile = $work/pgbouncer.pid
INI
[ "$(id -u)" -ne 0 ] || chown -R postgres: "$work"
stop_bouncer() { [ -f "$work/pgbouncer.pid" ] && as_pg kill "$(cat "$work/pgbouncer.pid")" 2>/dev/null; rm -rf "$work"; }
trap 'stop_bouncer; citus_stop_cluster' EXIT
as_pg "$PGBOUNCER" -d "$work/pgbouncer.ini"
for _ in $(seq 1 100); do
  "$PGBIN/psql" -X -q -h 127.0.0.1 -p "$bport" -U app -d citus -c 'SELECT 1' >/dev/null 2>&1 && break
  sleep 0.1
done
cat >"$work/tenants.sql" <<'BENCH'
\set t random(1, 20)
BEGIN;
SELECT dnr.set_context(('00000000-0000-4000-8000-' || lpad(:t::text, 12, '0'))::uuid);
SELECT 1 / (count(*) = 5 AND bool_and(tenant_id = ('00000000-0000-4000-8000-' || lpad(:t::text, 12, '0'))::uuid))::int FROM items;
COMMIT;
SELECT 1 / (dnr.current_tenant() IS NULL AND NOT EXISTS (SELECT 1 FROM items))::int;
BENCH
out=$("$PGBIN/pgbench" -n -h 127.0.0.1 -p "$bport" -U app -c "$CLIENTS" -j 2 -t "$TRANSACTIONS" -f "$work/tenants.sql" citus 2>&1) \
  || { echo "$out" | tail -5; fail "through pgbouncer a check failed (a context leaked or a tenant saw other rows)"; }
expected=$((CLIENTS * TRANSACTIONS))
echo "$out" | grep -q "number of transactions actually processed: $expected/$expected" || { echo "$out"; fail "not every transaction ran"; }
ok "pgbouncer (transaction mode, $CLIENTS clients on $POOL server connections): $expected transactions, each saw exactly its tenant, none after COMMIT"
