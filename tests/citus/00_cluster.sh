#!/usr/bin/env bash
# Smoke test of the Citus test cluster: a table distributed by tenant_id,
# rows written and read through the coordinator, shards (and rows) on both
# workers.
#
# Run by scripts/citus-test.sh against its cluster (CITUS_DB is a fresh
# database with citus + dnr on every node), or alone:
#   bash tests/citus/00_cluster.sh [--no-install]
# which starts (and stops) its own cluster. Exit 0 passed, 77 Citus cannot
# be had, anything else failed.
set -euo pipefail

ROOT=${ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
# shellcheck source=scripts/citus-lib.sh
. "$ROOT/scripts/citus-lib.sh"
citus_attach || citus_start_cluster "$@"

fail() { printf 'FAIL: %s\n' "$*"; exit 1; }

echo "citus: $(citus_psql 0 -Atc 'SELECT citus_version()')"
workers=$(citus_psql 0 -Atc "SELECT string_agg(nodeport::text, ' ' ORDER BY nodeport) FROM pg_dist_node WHERE noderole = 'primary' AND shouldhaveshards")
echo "nodes with shards: $workers"
[ "$workers" = "$CITUS_WORKER1_PORT $CITUS_WORKER2_PORT" ] || fail "expected the two workers, got: $workers"

citus_psql 0 >/dev/null <<'SQL'
SET client_min_messages = warning;
CREATE TABLE t (tenant_id uuid NOT NULL, id bigint NOT NULL, val text, PRIMARY KEY (tenant_id, id));
SELECT create_distributed_table('t', 'tenant_id');
INSERT INTO t
SELECT ('00000000-0000-0000-0000-' || lpad(tn::text, 12, '0'))::uuid, i, 'row ' || i
FROM generate_series(1, 20) tn, generate_series(1, 50) i;
SQL

total=$(citus_psql 0 -Atc "SELECT count(*) FROM t")
[ "$total" = 1000 ] || fail "coordinator reads $total rows, expected 1000"
one=$(citus_psql 0 -Atc "SELECT count(*) FROM t WHERE tenant_id = '00000000-0000-0000-0000-000000000007'")
[ "$one" = 50 ] || fail "tenant 7 has $one rows, expected 50"
tasks=$(citus_psql 0 -Atc "EXPLAIN SELECT count(*) FROM t WHERE tenant_id = '00000000-0000-0000-0000-000000000007'" | grep -o 'Task Count: [0-9]*')
[ "$tasks" = "Task Count: 1" ] || fail "a one-tenant query should touch one shard: $tasks"
echo "coordinator: $total rows; one tenant: $one rows, $tasks"

sum=0
for port in $CITUS_WORKER1_PORT $CITUS_WORKER2_PORT; do
  placements=$(citus_psql 0 -Atc "SELECT count(*) FROM citus_shards WHERE table_name = 't'::regclass AND nodeport = $port")
  [ "$placements" -gt 0 ] || fail "worker :$port holds no shard of t"
  # On the worker itself: the shard tables t_NNNNNN and their rows (Citus
  # hides shards from catalog queries unless told otherwise).
  shards=$(citus_psql "$port" -At -c "SET citus.override_table_visibility = off" -c "SELECT count(*) FROM pg_class WHERE relname ~ '^t_[0-9]+\$' AND relkind = 'r'")
  [ "$shards" = "$placements" ] || fail "worker :$port has $shards shard tables, the coordinator says $placements"
  rows=$(citus_psql "$port" -At -c "SET citus.override_table_visibility = off" -c "SELECT coalesce(sum((xpath('/row/c/text()', query_to_xml('SELECT count(*) AS c FROM ' || oid::regclass, false, true, '')))[1]::text::bigint), 0) FROM pg_class WHERE relname ~ '^t_[0-9]+\$' AND relkind = 'r'")
  [ "$rows" -gt 0 ] || fail "worker :$port holds no rows"
  echo "worker :$port: $shards shards, $rows rows"
  sum=$((sum + rows))
done
[ "$sum" = 1000 ] || fail "the workers hold $sum rows together, expected 1000"
echo "ok"
