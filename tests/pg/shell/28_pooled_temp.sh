#!/usr/bin/env bash
# Issue 27, point 3: a pooled connection cannot be poisoned with temporary
# objects. Behind pgbouncer in transaction mode (one server connection),
# request 1 (tenant A) creates pg_temp.notes, a view over public.notes that
# copies every row it sees into a temporary table. Request 2 (tenant B)
# runs the application's unqualified `SELECT ... FROM notes`. DNR refuses
# to set a tenant while a temporary relation shadows a table it enforces,
# so request 2 gets an error instead of running through the view, and
# request 3 finds none of B's rows in the loot.
#
# Run by scripts/pg-test.sh (DNR_TEST_DB, PGBIN, PG_WORK, PGHOST/PGPORT).
# Exits 77 (skipped) when pgbouncer cannot be installed.
set -euo pipefail
: "${DNR_TEST_DB:?}" "${PGBIN:?}" "${PG_WORK:?}" "${PGHOST:?}" "${PGPORT:?}"
server_port=$PGPORT
ROOT=${ROOT:-$(cd "$(dirname "$0")/../../.." && pwd)}
# shellcheck source=scripts/pg-lib.sh
. "$ROOT/scripts/pg-lib.sh"
PGPORT=$server_port
fail() { echo "FAILED: $*"; exit 1; }
expect_match() {
  if grep -qE -- "$2" <<<"$3"; then echo "ok: $1"; else printf '%s\n' "$3"; fail "$1: expected /$2/"; fi
}
expect_no_match() {
  if grep -qE -- "$2" <<<"$3"; then printf '%s\n' "$3"; fail "$1: unexpected /$2/"; else echo "ok: $1"; fi
}

pg_ensure_pgbouncer
if [ -z "$PGBOUNCER" ]; then
  echo "pgbouncer is not installed and could not be installed (apt-get install pgbouncer)"
  exit 77
fi
db=$DNR_TEST_DB
A=aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa
B=bbbbbbbb-bbbb-bbbb-bbbb-bbbbbbbbbbbb
BOUNCER_DIR=$PG_WORK/pgbouncer28
BOUNCER_PORT=$((server_port + 2))
cleanup() {
  if [ -f "$BOUNCER_DIR/pgbouncer.pid" ]; then
    as_pg kill "$(cat "$BOUNCER_DIR/pgbouncer.pid")" 2>/dev/null || true
  fi
}
trap cleanup EXIT

pg_psql -U dnr_owner -d "$db" <<SQL >/dev/null
CREATE TABLE notes (id int PRIMARY KEY, tenant_id uuid NOT NULL, body text);
SELECT dnr.enable_tenant_isolation('notes');
GRANT SELECT, INSERT ON notes TO app;
SQL
# rows of both tenants, inserted with their contexts
pg_psql -U app -d "$db" <<SQL >/dev/null
BEGIN; SELECT dnr.set_tenant('$A'); INSERT INTO notes VALUES (1, '$A', 'A one'); COMMIT;
BEGIN; SELECT dnr.set_tenant('$B'); INSERT INTO notes VALUES (2, '$B', 'B one'), (3, '$B', 'B two'); COMMIT;
SQL

pg_start_pgbouncer "$BOUNCER_DIR" "$BOUNCER_PORT" 1 20 app <<DATABASES
app = host=$PG_WORK port=$server_port dbname=$db user=app
DATABASES
# request SQL...: one client connection through the pool (one server
# connection); each argument a statement of its own, sent one after the
# other as an application does (errors do not stop the rest)
request() {
  local args=()
  for sql in "$@"; do args+=(-c "$sql"); done
  "$PGBIN/psql" -X -q -t -A -h "$BOUNCER_DIR" -p "$BOUNCER_PORT" -U app -d app "${args[@]}" 2>&1 || true
}

# Request 1, tenant A: the poison.
out=$(request "BEGIN" "SELECT dnr.set_tenant('$A')" \
  "CREATE TEMP TABLE loot (id int, tenant_id uuid, body text)" \
  "CREATE FUNCTION pg_temp.grab(int, uuid, text) RETURNS boolean LANGUAGE sql AS
     'INSERT INTO pg_temp.loot VALUES (\$1, \$2, \$3) RETURNING true'" \
  "CREATE TEMP VIEW notes AS SELECT n.* FROM public.notes n WHERE pg_temp.grab(n.id, n.tenant_id, n.body)" \
  "SELECT 'backend=' || pg_backend_pid()" "COMMIT")
expect_match "request 1 created the temporary view" "backend=" "$out"
backend1=$(grep -o 'backend=[0-9]*' <<<"$out")

# Request 2, tenant B: the application's own queries (it rolls back on an
# error, as applications do).
out=$(request "BEGIN" "SELECT 'backend=' || pg_backend_pid()" "SELECT dnr.set_tenant('$B')" \
  "SELECT 'rows=' || count(*) FROM notes" "ROLLBACK")
expect_match "request 2 ran on the same server connection" "$backend1\$" "$out"
expect_match "request 2: setting a tenant is refused while pg_temp.notes shadows notes" \
  "cannot be set while the temporary relation pg_temp.notes shadows" "$out"
expect_no_match "request 2 read nothing through the view" "rows=[1-9]" "$out"
# the tenant by set_config, and the signed-less SET
out=$(request "SELECT 'backend=' || pg_backend_pid()" "BEGIN" "SELECT set_config('dnr.tenant_id', '$B', true)" \
  "SELECT 'rows=' || count(*) FROM notes" "ROLLBACK" \
  "BEGIN" "SET LOCAL dnr.tenant_id = '$B'" "SELECT 'rows=' || count(*) FROM notes" "ROLLBACK")
expect_match "request 2b ran on the same server connection" "$backend1\$" "$out"
expect_no_match "request 2b read nothing through the view" "rows=[1-9]" "$out"

# Request 3, tenant A again: B's rows are not in the loot.
out=$(request "SELECT 'backend=' || pg_backend_pid()" "SELECT 'loot_of_b=' || count(*) FROM pg_temp.loot WHERE tenant_id = '$B'")
expect_match "request 3 ran on the same server connection" "$backend1\$" "$out"
expect_match "none of B's rows reached the loot" "loot_of_b=0" "$out"

# DISCARD TEMP (what server_reset_query = DISCARD ALL does) clears it.
out=$(request "DISCARD TEMP")
out=$(request "BEGIN" "SELECT dnr.set_tenant('$B')" "SELECT 'rows=' || count(*) FROM notes" "COMMIT")
expect_match "after DISCARD TEMP, tenant B reads its own rows" "rows=2" "$out"
# A temporary table of another name does not stand in the way.
out=$(request "BEGIN" "CREATE TEMP TABLE scratch (x int)" "SELECT dnr.set_tenant('$A')" "SELECT 'rows=' || count(*) FROM notes" "COMMIT")
expect_match "a temporary table of another name is fine" "rows=1" "$out"
