#!/usr/bin/env bash
# DNR's row-level policies on a Citus distributed table, through the
# coordinator, as an ordinary application role:
#   apply (a non-superuser owner) -> create_distributed_table -> re-apply;
#   the policies on every shard carry the tenant fence (Citus drops
#   AS RESTRICTIVE when it copies policies: DNR's Citus flavour puts the
#   fence into each policy);
#   two tenants write (tenant column filled by its DEFAULT on the
#   coordinator) and read only their own rows across shards, also a user
#   with rows in both tenants; a filter naming the other tenant finds
#   nothing; a write into the other tenant is refused; owner rules and a
#   forbid hold; no context -> nothing; the context is gone after COMMIT and
#   ROLLBACK; a session-wide context is refused.
#
# Run by scripts/citus-test.sh (or alone: bash tests/citus/10_dnr_row_level.sh).
set -euo pipefail
ROOT=${ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
# shellcheck source=scripts/citus-lib.sh
. "$ROOT/scripts/citus-lib.sh"
citus_attach || citus_start_cluster "$@"

fail() { printf 'FAIL: %s\n' "$*"; exit 1; }
ok() { printf 'ok: %s\n' "$*"; }
expect() { [ "$3" = "$2" ] && ok "$1" || fail "$1: expected [$2], got [$3]"; }
db=dnr_rl
work=$(mktemp -d)
# q ROLE SQL: one psql session on the coordinator, unaligned, tuples only
q() { "$PGBIN/psql" -X -q -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$CITUS_COORDINATOR_PORT" -U "$1" -d "$db" -c "$2" 2>&1; }
# in_tx ROLE TENANT USER SQL: SQL in a transaction with that context; output
# of the SQL only
in_tx() {
  "$PGBIN/psql" -X -q -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$CITUS_COORDINATOR_PORT" -U "$1" -d "$db" 2>&1 <<SQL
BEGIN;
SELECT dnr.set_context('$2', '$3') \\g /dev/null
$4
COMMIT;
SQL
}

# tag ROLE TENANT USER SQL VERB: the command tag of SQL under that context
tag() {
  "$PGBIN/psql" -X -At -h 127.0.0.1 -p "$CITUS_COORDINATOR_PORT" -U "$1" -d "$db" >"$work/tag" 2>&1 <<SQL || true
BEGIN;
SELECT dnr.set_context('$2', '$3') \\g /dev/null
$4;
COMMIT;
SQL
  grep "^$5" "$work/tag" || { echo "$5 ?"; cat "$work/tag" >&2; }
}

# Roles are created at top level: Citus propagates (and tracks) them then.
for role in dnr_owner app; do
  [ "$(citus_psql 0 -Atc "SELECT count(*) FROM pg_roles WHERE rolname = '$role'")" = 1 ] \
    || citus_psql 0 -c "CREATE ROLE $role LOGIN NOSUPERUSER NOBYPASSRLS" >/dev/null
done
for port in $(cat "$CITUS_WORK/workers"); do
  [ "$(citus_psql "$port" -d postgres -Atc "SELECT count(*) FROM pg_roles WHERE rolname IN ('dnr_owner', 'app')")" = 2 ] \
    || fail "roles did not reach worker $port"
done
citus_create_db "$db" dnr_owner

POLICY="
entity Task:
  table: tasks
  id: int pk
  title: text
  owner_id: uuid
  status: text = 'open'
  access:
    read: true
    create: owner_id = current_user
    update: owner_id = current_user
    delete: owner_id = current_user
  forbid:
    delete: status = 'locked'
"
out=$(q dnr_owner "SELECT dnr.apply(\$dnr\$$POLICY\$dnr\$)" || true)
case "$out" in *"applied 1 entity"*) ok "apply as the owner (Citus flavour)" ;; *) fail "apply: $out" ;; esac
out=$(q dnr_owner "SET client_min_messages = warning; SELECT create_distributed_table('tasks', 'tenant_id')")
[ "$out" = "" ] || fail "create_distributed_table: $out"
ok "the applied table distributes (no trigger, no subquery, keys include tenant_id)"
out=$(q dnr_owner "GRANT SELECT, INSERT, UPDATE, DELETE ON tasks TO app") || fail "grant: $out"
out=$(q dnr_owner "SELECT dnr.apply(\$dnr\$$POLICY\$dnr\$)" || true)
case "$out" in *"applied 1 entity"*) ok "re-apply on the distributed table" ;; *) fail "re-apply: $out" ;; esac
shards=$(citus_psql 0 -d "$db" -Atc "SELECT count(*) FROM pg_dist_shard WHERE logicalrelid = 'tasks'::regclass")
on_workers=0
for port in $(cat "$CITUS_WORK/workers"); do
  # Citus hides shards from catalog queries unless told not to.
  n=$(citus_psql "$port" -d "$db" -At -c "SET citus.override_table_visibility = off" -c "SELECT count(DISTINCT c.oid) FROM pg_class c JOIN pg_policy p ON p.polrelid = c.oid WHERE c.relname ~ '^tasks_[0-9]+\$' AND p.polname = 'dnr_read' AND pg_get_expr(p.polqual, p.polrelid) LIKE '%current_tenant()%'")
  bad=$(citus_psql "$port" -d "$db" -At -c "SET citus.override_table_visibility = off" -c "SELECT count(*) FROM pg_class c JOIN pg_policy p ON p.polrelid = c.oid WHERE c.relname ~ '^tasks_[0-9]+\$' AND p.polname = 'dnr_fence'")
  [ "$bad" = 0 ] || fail "a permissive dnr_fence reached worker $port's shards"
  on_workers=$((on_workers + n))
done
expect "every shard's read policy carries the fence" "$shards" "$on_workers"

A=11111111-1111-4111-8111-111111111111
B=22222222-2222-4222-8222-222222222222
U1=aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa
U2=bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb
values() { local owner=$1 from=$2 to=$3 i out=""; for i in $(seq "$from" "$to"); do out="$out${out:+, }($i, 'task $i', '$owner')"; done; echo "$out"; }
in_tx app "$A" "$U1" "INSERT INTO tasks (id, title, owner_id) VALUES $(values "$U1" 1 20);" >/dev/null
in_tx app "$B" "$U2" "INSERT INTO tasks (id, title, owner_id) VALUES $(values "$U2" 1 20);" >/dev/null
# U1 is a user of both tenants.
in_tx app "$B" "$U1" "INSERT INTO tasks (id, title, owner_id) VALUES (100, 'u1 in b', '$U1');" >/dev/null
expect "tenant A sees its 20 rows" "20" "$(in_tx app "$A" "$U1" "SELECT count(*) FROM tasks;")"
expect "tenant B sees its 21 rows" "21" "$(in_tx app "$B" "$U2" "SELECT count(*) FROM tasks;")"
expect "a user of both tenants sees only the current tenant's rows" "20|0" \
  "$(in_tx app "$A" "$U1" "SELECT count(*), count(*) FILTER (WHERE id = 100) FROM tasks;" | tr '\n' '|' | sed 's/|$//')"
expect "a filter naming the other tenant finds nothing" "0" \
  "$(in_tx app "$A" "$U1" "SELECT count(*) FROM tasks WHERE tenant_id = '$B';")"
expect "rows were filled with the writer's tenant" "$A|20" \
  "$(q postgres "SELECT tenant_id, count(*) FROM tasks WHERE tenant_id = '$A' GROUP BY 1")"
out=$(in_tx app "$A" "$U1" "INSERT INTO tasks (tenant_id, id, title, owner_id) VALUES ('$B', 500, 'x', '$U1');" || true)
case "$out" in *"row-level security"*) ok "a write into the other tenant is refused" ;; *) fail "cross-tenant insert: $out" ;; esac
out=$(in_tx app "$A" "$U1" "INSERT INTO tasks (id, title, owner_id) VALUES (501, 'x', '$U2');" || true)
case "$out" in *"row-level security"*) ok "create rule: owner_id must be the user" ;; *) fail "create rule: $out" ;; esac
expect "update rule: another user's rows are left alone" "UPDATE 0" \
  "$(tag app "$A" "$U2" "UPDATE tasks SET title = 'stolen'" UPDATE)"
expect "update rule: the owner updates its own rows" "UPDATE 20" \
  "$(tag app "$A" "$U1" "UPDATE tasks SET title = 'mine'" UPDATE)"
in_tx app "$A" "$U1" "UPDATE tasks SET status = 'locked' WHERE id = 1;" >/dev/null
expect "forbid: a locked row is not deleted, another one is" "DELETE 0|DELETE 1" \
  "$(tag app "$A" "$U1" "DELETE FROM tasks WHERE id = 1" DELETE)|$(tag app "$A" "$U1" "DELETE FROM tasks WHERE id = 2" DELETE)"
expect "no context: nothing" "0" "$(q app "SELECT count(*) FROM tasks")"
out=$(q app "INSERT INTO tasks (id, title, owner_id) VALUES (600, 'x', '$U1')" || true)
case "$out" in *ERROR*) ok "no context: no write" ;; *) fail "insert without context: $out" ;; esac
gone=$("$PGBIN/psql" -X -q -At -h 127.0.0.1 -p "$CITUS_COORDINATOR_PORT" -U app -d "$db" 2>&1 <<SQL
BEGIN;
SELECT dnr.set_context('$A', '$U1') \\g /dev/null
SELECT count(*) FROM tasks \\g /dev/null
COMMIT;
SELECT count(*) FROM tasks;
BEGIN;
SELECT dnr.set_context('$B', '$U2') \\g /dev/null
SELECT count(*) FROM tasks \\g /dev/null
ROLLBACK;
SELECT count(*) FROM tasks;
SQL
)
expect "the context is gone after COMMIT and ROLLBACK" "0|0" "$(echo "$gone" | tr '\n' '|' | sed 's/|$//')"
out=$(q app "SELECT dnr.set_context('$A', '$U1', NULL, false)" || true)
case "$out" in *"transaction-local"*) ok "a session-wide context is refused on Citus" ;; *) fail "session context: $out" ;; esac
# A policy that no longer has the distributed table's entity: its DNR
# policies go, RLS stays on (fail closed), and no trigger statement is sent
# (Citus refuses any on a distributed table).
OTHER="
entity Note:
  table: notes
  id: int pk
  access:
    read: true
"
out=$(q dnr_owner "SELECT dnr.apply(\$dnr\$$OTHER\$dnr\$)" || true)
case "$out" in *"applied 1 entity"*) ok "apply of a policy without the distributed table's entity" ;; *) fail "apply without Task: $out" ;; esac
expect "the table left out is fenced shut (RLS on, no policy)" "0" "$(in_tx app "$A" "$U1" "SELECT count(*) FROM tasks;")"
