#!/usr/bin/env bash
# Benchmarks relationship rules: listing the projects a user may read under
# `read: role(admin) or exists Membership where project_id = this.id and
# user_id = current_user`, against the same listing written by hand on plain
# tables, in PostgreSQL and in SQLite. 100,000 projects over 100 tenants and
# 1,000,000 memberships (ten per project; 100 users per tenant, each a member
# of ~100 of their tenant's 1,000 projects).
#
#   (a) DNR: `SELECT id, name FROM projects` under the context (PostgreSQL:
#       RLS compiled by dnr.apply, an ordinary role, dnr.set_context in the
#       same transaction; SQLite: the enforced view)
#   (b) hand-written on plain tables: `WHERE p.tenant_id = $1 AND EXISTS
#       (SELECT 1 FROM memberships m WHERE m.project_id = p.id AND
#       m.user_id = $2)` (PostgreSQL: in the same kind of transaction, with
#       a set_config, so both sides make the same round trips)
#   (c) (b) without the tenant filter
# Both sides have the primary keys and tenant columns indexed, and
# memberships indexed for their query: the plain side on (project_id,
# user_id), what the hand-written EXISTS probes; DNR's side on (tenant_id,
# user_id, project_id), what dnr.apply creates for the `exists`. Both sides are
# checked to return the same rows first, and the enforced plan to read
# memberships through an index (no Seq Scan).
#
# Writes bench/exists.md and prints it. Usage: scripts/exists-bench.sh
# [--no-install] [--sqlite-only]
# Environment: DNR_BENCH_SECONDS (default 5), DNR_BENCH_ROUNDS (default 3),
# DNR_EXISTS_PROJECTS (default 100000), DNR_EXISTS_TENANTS (default 100),
# DNR_EXISTS_MEMBERS (per project, default 10), PG_CONFIG, DNR_PG_PORT.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/pg-lib.sh
. "$ROOT/scripts/pg-lib.sh"
cd "$ROOT"
export PATH="$HOME/.cargo/bin:$PATH"

install=1
postgres=1
for arg in "$@"; do
  case "$arg" in
    --no-install) install=0 ;;
    --sqlite-only) postgres=0 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) pg_die "unknown argument $arg" ;;
  esac
done

SECONDS_PER_RUN=${DNR_BENCH_SECONDS:-5}
ROUNDS=${DNR_BENCH_ROUNDS:-3}
PROJECTS=${DNR_EXISTS_PROJECTS:-100000}
TENANTS=${DNR_EXISTS_TENANTS:-100}
MEMBERS=${DNR_EXISTS_MEMBERS:-10}
OUT="$ROOT/bench/exists.md"
work=$(mktemp -d)
report="$work/report.md"

pg_log "SQLite: building the extension and the benchmark"
cargo build --release -q -p dnr-sqlite-ext
cargo build --release -q -p dnr-sqlite --example exists_bench
mkdir -p target/sqlite-bench
{
  echo "# Relationship rules: listing the projects a user may read"
  echo
  echo "Produced by \`scripts/exists-bench.sh\` on $(date -u +%Y-%m-%d), $(nproc) cores."
  echo
  "$ROOT/target/release/examples/exists_bench" target/sqlite-bench/exists.db \
    "$PROJECTS" "$TENANTS" "$MEMBERS" 300
} >"$report"

if [ "$postgres" = 1 ]; then
  pg_ensure_tools
  [ "$install" = 1 ] && pg_install_extension
  DNR_PG_OPTIONS="-c shared_buffers=1GB -c max_parallel_workers_per_gather=0 ${DNR_PG_OPTIONS:-}"
  pg_start_cluster

  pg_log "PostgreSQL: loading $PROJECTS projects and $((PROJECTS * MEMBERS)) memberships"
  pg_psql -d postgres <<'SQL'
CREATE ROLE bench_app LOGIN NOSUPERUSER NOBYPASSRLS;
CREATE DATABASE bench;
SQL
  # tenant k: 00000000-0000-4000-8000-<k>; user u: 00000000-0000-4000-9000-<u>.
  # Project p belongs to tenant p % tenants; its members are the users
  # (p / tenants + 10 k) % 100, k < members.
  pg_psql -d bench -v projects="$PROJECTS" -v tenants="$TENANTS" -v members="$MEMBERS" <<'SQL'
CREATE EXTENSION dnr;
CREATE FUNCTION bench_tenant(k bigint) RETURNS uuid IMMUTABLE LANGUAGE sql
  AS $$ SELECT ('00000000-0000-4000-8000-' || lpad(k::text, 12, '0'))::uuid $$;
CREATE FUNCTION bench_user(u bigint) RETURNS uuid IMMUTABLE LANGUAGE sql
  AS $$ SELECT ('00000000-0000-4000-9000-' || lpad(u::text, 12, '0'))::uuid $$;
CREATE TABLE plain_projects AS
  SELECT bench_tenant(p % :tenants) AS tenant_id, p AS id, 'project ' || p AS name
    FROM generate_series(0, :projects - 1) p;
CREATE TABLE plain_memberships AS
  SELECT bench_tenant(p % :tenants) AS tenant_id, p * :members + k AS id, p AS project_id,
         bench_user((p / :tenants + 10 * k) % 100) AS user_id
    FROM generate_series(0, :projects - 1) p, generate_series(0, :members - 1) k;
ALTER TABLE plain_projects ADD PRIMARY KEY (id);
ALTER TABLE plain_memberships ADD PRIMARY KEY (id);
CREATE INDEX ON plain_projects (tenant_id);
CREATE INDEX ON plain_memberships (tenant_id);
CREATE INDEX ON plain_memberships (project_id, user_id);
CREATE TABLE projects (LIKE plain_projects INCLUDING ALL);
CREATE TABLE memberships (LIKE plain_memberships INCLUDING ALL);
DROP INDEX memberships_project_id_user_id_idx;
DROP INDEX memberships_tenant_id_idx;
DROP INDEX projects_tenant_id_idx;
INSERT INTO projects SELECT * FROM plain_projects;
INSERT INTO memberships SELECT * FROM plain_memberships;
SELECT dnr.apply($policy$
tenancy:
  mode: row_level
  column: tenant_id

entity Project:
  table: projects
  access:
    read: role(admin) or exists Membership where project_id = this.id and user_id = current_user
    create: role(admin)

entity Membership:
  table: memberships
  access:
    read: user_id = current_user or role(admin)
    create: role(admin)
$policy$) IS NOT NULL AS applied \gset
GRANT SELECT ON projects, memberships, plain_projects, plain_memberships TO bench_app;
GRANT EXECUTE ON FUNCTION bench_tenant(bigint), bench_user(bigint) TO bench_app;
VACUUM ANALYZE;
SQL

  pg_log "PostgreSQL: both sides list the same projects; the plan uses the memberships index"
  plan=$("$PGBIN/psql" -X -q -At -U bench_app -d bench <<'SQL'
BEGIN;
SELECT dnr.set_context(bench_tenant(7), bench_user(42), NULL);
EXPLAIN (COSTS OFF) SELECT id, name FROM projects;
COMMIT;
SQL
)
  # PostgreSQL may probe the index per project or read the user's
  # memberships of the tenant once (a hashed subplan): either reads
  # memberships through an index.
  echo "$plan" | grep -Eq 'Index (Only )?Scan( using| on) memberships_' \
    || { echo "$plan" >&2; pg_die "the enforced listing reads memberships through no index"; }
  if echo "$plan" | grep -q 'Seq Scan on memberships'; then
    echo "$plan" >&2; pg_die "the enforced listing scans memberships"
  fi
  same=$("$PGBIN/psql" -X -q -At -U bench_app -d bench <<'SQL'
BEGIN;
SELECT dnr.set_context(bench_tenant(7), bench_user(42), NULL);
SELECT (SELECT array_agg(id ORDER BY id) FROM projects)
     = (SELECT array_agg(id ORDER BY id) FROM plain_projects p WHERE p.tenant_id = bench_tenant(7)
          AND EXISTS (SELECT 1 FROM plain_memberships m WHERE m.project_id = p.id AND m.user_id = bench_user(42)))
   AND (SELECT count(*) FROM projects) > 0;
COMMIT;
SQL
)
  same=$(tail -n1 <<<"$same")
  [ "$same" = t ] || pg_die "the enforced listing returned other projects than the hand-written one"

  scripts="$work/pgbench"
  mkdir -p "$scripts"
  cat >"$scripts/a.sql" <<SQL
\\set t random(0, $((TENANTS - 1)))
\\set u random(0, 99)
BEGIN;
SELECT dnr.set_context(bench_tenant(:t), bench_user(:u), NULL);
SELECT id, name FROM projects;
COMMIT;
SQL
  cat >"$scripts/b.sql" <<SQL
\\set t random(0, $((TENANTS - 1)))
\\set u random(0, 99)
BEGIN;
SELECT set_config('app.user_id', bench_user(:u)::text, true);
SELECT id, name FROM plain_projects p WHERE p.tenant_id = bench_tenant(:t)
  AND EXISTS (SELECT 1 FROM plain_memberships m WHERE m.project_id = p.id AND m.user_id = bench_user(:u));
COMMIT;
SQL
  cat >"$scripts/c.sql" <<SQL
\\set u random(0, 99)
BEGIN;
SELECT set_config('app.user_id', bench_user(:u)::text, true);
SELECT id, name FROM plain_projects p
  WHERE EXISTS (SELECT 1 FROM plain_memberships m WHERE m.project_id = p.id AND m.user_id = bench_user(:u));
COMMIT;
SQL
  declare -A LAT
  for round in $(seq "$ROUNDS"); do
    for side in a b c; do
      seconds=$SECONDS_PER_RUN
      [ "$side" = c ] && seconds=$(( (SECONDS_PER_RUN + 1) / 2 ))
      out=$("$PGBIN/pgbench" -n -M prepared -U bench_app -c 1 -T "$seconds" -f "$scripts/$side.sql" bench 2>&1) \
        || { echo "$out" >&2; pg_die "pgbench failed for ($side)"; }
      lat=$(echo "$out" | sed -n 's/^latency average = \([0-9.]*\) ms.*/\1/p')
      [ -n "$lat" ] || { echo "$out" >&2; pg_die "no latency in pgbench output"; }
      LAT[$side]="${LAT[$side]:-} $lat"
      pg_log "round $round ($side): $lat ms"
    done
  done
  median() { tr ' ' '\n' <<<"$1" | sed '/^$/d' | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
  a=$(median "${LAT[a]}"); b=$(median "${LAT[b]}"); c=$(median "${LAT[c]}")
  ratio=$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.2f", a / b }')
  verdict=$(awk -v r="$ratio" 'BEGIN { print (r <= 1.5 ? "ok" : "**over**") }')
  {
    echo
    echo "## PostgreSQL: listing the projects a user may read (exists)"
    echo
    echo "$PROJECTS projects over $TENANTS tenants, $((PROJECTS * MEMBERS)) memberships; pgbench, one client, prepared statements, one transaction per listing, median of $ROUNDS runs of ${SECONDS_PER_RUN} s. Plan of the enforced listing (as \`bench_app\`):"
    echo
    echo '```'
    echo "$plan"
    echo '```'
    echo
    echo "| query | ms per transaction | ratio to (b) |"
    echo "|---|---|---|"
    echo "| (a) DNR \`SELECT id, name FROM projects\`, \`dnr.set_context\` in the transaction | $a | ${ratio}× |"
    echo "| (b) hand-written: tenant filter and \`EXISTS (... m.project_id = p.id AND m.user_id = \$u)\`, a \`set_config\` in the transaction | $b | 1.00× |"
    echo "| (c) (b) without the tenant filter | $c | $(awk -v c="$c" -v b="$b" 'BEGIN { printf "%.2f", c / b }')× |"
    echo
    echo "| target | this run |"
    echo "|---|---|"
    echo "| PostgreSQL exists listing (a) ≤ 1.50× hand-written (b) | ${ratio}× ($verdict) |"
  } >>"$report"
fi

mkdir -p bench
cp "$report" "$OUT"
rm -rf "$work"
cat "$OUT"
