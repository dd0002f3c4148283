#!/usr/bin/env bash
# Signed context on Citus: dnr.set_context_signed verifies the token on the
# coordinator and its verified tenant reaches every worker of the
# transaction (forwarded SET LOCAL): each of 3 tenants' tokens shows
# exactly that tenant's rows across the shards, a forged token is refused
# and sets nothing, and after COMMIT nothing is visible. Keys: the PUBLIC
# TEST KEYS of tests/pg/fixtures (scripts/citus-test.sh puts them in every
# node's postgresql.conf). `dnr.require_signed` is not supported on Citus
# (docs/citus.md) and not tested here.
#
# Run by scripts/citus-test.sh. Exit 0 passed, 77 skipped.
set -euo pipefail
ROOT=${ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
# shellcheck source=scripts/citus-lib.sh
. "$ROOT/scripts/citus-lib.sh"
if ! citus_attach; then
  export DNR_CITUS_CONF="$ROOT/tests/pg/fixtures/signed-keys.conf ${DNR_CITUS_CONF:-}"
  citus_start_cluster "$@"
fi

fail() { printf 'FAIL: %s\n' "$*"; exit 1; }
ok() { printf 'ok: %s\n' "$*"; }
db=dnr_sig
tokens=$ROOT/tests/pg/fixtures/signed-tenants.csv
token() { awk -F, -v i="$1" '$1 == i { print $3 }' "$tokens"; }
tenant() { awk -F, -v i="$1" '$1 == i { print $2 }' "$tokens"; }
q() { "$PGBIN/psql" -X -q -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$CITUS_COORDINATOR_PORT" -U "$1" -d "$db" 2>&1; }

for role in dnr_owner app; do
  [ "$(citus_psql 0 -Atc "SELECT count(*) FROM pg_roles WHERE rolname = '$role'")" = 1 ] \
    || citus_psql 0 -c "CREATE ROLE $role LOGIN NOSUPERUSER NOBYPASSRLS" >/dev/null
done
citus_create_db "$db" dnr_owner
q dnr_owner >/dev/null <<'SQL'
SELECT dnr.apply($dnr$
entity Item:
  table: items
  id: int pk
  access:
    read: true
    create: true
$dnr$);
SET client_min_messages = warning;
SELECT create_distributed_table('items', 'tenant_id');
GRANT SELECT, INSERT ON items TO app;
SQL
for i in 1 2 3; do
  q app >/dev/null <<SQL || fail "seeding tenant $i"
BEGIN;
SELECT dnr.set_context('$(tenant "$i")') \g /dev/null
INSERT INTO items (id) VALUES ($((i * 10 + 1))), ($((i * 10 + 2))), ($((i * 10 + 3)));
COMMIT;
SQL
done
for i in 1 2 3; do
  seen=$(q app <<SQL
BEGIN;
SELECT dnr.set_context_signed('$(token "$i")') \g /dev/null
SELECT count(*) = 3 AND bool_and(tenant_id = '$(tenant "$i")') FROM items;
COMMIT;
SELECT count(*) FROM items;
SQL
)
  [ "$seen" = "t
0" ] || fail "tenant $i's token: $seen"
done
ok "each tenant's signed token shows exactly its rows on the workers, nothing after COMMIT"
good=$(token 1)
forged="${good%?}A"
[ "$forged" != "$good" ] || forged="${good%?}B"
out=$(q app <<SQL || true
BEGIN;
SELECT dnr.set_context_signed('$forged') \g /dev/null
SELECT count(*) FROM items;
COMMIT;
SQL
)
case "$out" in *ERROR*) ok "a forged token is refused" ;; *) fail "forged token: $out" ;; esac
