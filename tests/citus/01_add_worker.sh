#!/usr/bin/env bash
# citus_add_worker: a third worker joins the cluster, the shards of a
# distributed table are rebalanced onto it (citus_rebalance_start) and every
# row is still there, read through the coordinator. The moves block writes
# (shard_transfer_mode 'block_writes': 20 s here; the default, logical
# replication, took 70 s).
#
# Run by scripts/citus-test.sh, or alone: bash tests/citus/01_add_worker.sh
# [--no-install]. Exit 0 passed, 77 Citus cannot be had, else failed.
set -euo pipefail

ROOT=${ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
# shellcheck source=scripts/citus-lib.sh
. "$ROOT/scripts/citus-lib.sh"
citus_attach || citus_start_cluster "$@"

fail() { printf 'FAIL: %s\n' "$*"; exit 1; }

citus_psql 0 >/dev/null <<'SQL'
SET client_min_messages = warning;
CREATE TABLE r (tenant_id uuid NOT NULL, id bigint NOT NULL, PRIMARY KEY (tenant_id, id));
SELECT create_distributed_table('r', 'tenant_id');
INSERT INTO r
SELECT ('00000000-0000-0000-0000-' || lpad(tn::text, 12, '0'))::uuid, i
FROM generate_series(1, 40) tn, generate_series(1, 25) i;
SQL

citus_add_worker
echo "new worker: :$CITUS_NEW_WORKER_PORT (workers: $CITUS_WORKER_PORTS)"
before=$(citus_psql 0 -Atc "SELECT count(*) FROM citus_shards WHERE table_name = 'r'::regclass AND nodeport = $CITUS_NEW_WORKER_PORT")
[ "$before" = 0 ] || fail "the new worker holds $before shards before rebalancing"

citus_psql 0 -c "SET client_min_messages = warning" -c "SELECT citus_rebalance_start(shard_transfer_mode => 'block_writes')" >/dev/null
citus_psql 0 -c "SET client_min_messages = warning" -c "SELECT citus_rebalance_wait()" >/dev/null
after=$(citus_psql 0 -Atc "SELECT count(*) FROM citus_shards WHERE table_name = 'r'::regclass AND nodeport = $CITUS_NEW_WORKER_PORT")
[ "$after" -gt 0 ] || fail "no shard moved to the new worker"
echo "shards on the new worker after rebalancing: $after"
total=$(citus_psql 0 -Atc "SELECT count(*) FROM r")
[ "$total" = 1000 ] || fail "$total rows after rebalancing, expected 1000"
echo "ok"
