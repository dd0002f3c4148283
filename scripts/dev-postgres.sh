#!/usr/bin/env bash
# A throwaway PostgreSQL for development, with the dnr extension built and
# installed from this checkout into the machine's PostgreSQL 15: initdb in a
# temporary directory, listening on localhost (port DNR_DEV_PG_PORT, default
# 54330), trust authentication. Prints the URLs and runs until Ctrl-C, which
# stops the server and deletes its data.
#
# It has:
#   roles     dnr_owner (owns the tables, applies policies, runs migrations,
#             may create tenant databases: LOGIN CREATEDB, no superuser)
#             app (the application: LOGIN, owns nothing)
#   databases app (owned by dnr_owner, with the extension)
#             dnr_template (a template with the extension, for
#             tenant_mode = "database": postgres_template = "dnr_template")
#
# Usage: scripts/dev-postgres.sh [--no-install]     (or: just dev-pg)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/pg-lib.sh
. "$ROOT/scripts/pg-lib.sh"
install=1
for arg in "$@"; do
  case "$arg" in
    --no-install) install=0 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) pg_die "unknown argument $arg" ;;
  esac
done
PGPORT=${DNR_DEV_PG_PORT:-54330}
pg_ensure_tools
[ "$install" = 1 ] && pg_install_extension
DNR_PG_OPTIONS="-c listen_addresses=localhost ${DNR_PG_OPTIONS:-}"
pg_start_cluster
pg_psql -d postgres <<'SQL'
CREATE ROLE dnr_owner LOGIN CREATEDB NOSUPERUSER NOBYPASSRLS;
CREATE ROLE app LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB;
CREATE DATABASE app OWNER dnr_owner;
CREATE DATABASE dnr_template OWNER dnr_owner IS_TEMPLATE true;
SQL
for db in app dnr_template; do pg_psql -d "$db" -c "CREATE EXTENSION dnr"; done
url="postgresql://dnr_owner@localhost:$PGPORT/app"
cat <<TEXT

PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}') with the dnr extension is running (Ctrl-C stops it and deletes its data).

  owner (dnr apply, migrate, tenants):  $url
  application role:                     postgresql://app@localhost:$PGPORT/app
  psql:                                 $PGBIN/psql $url

  export DATABASE_URL=$url     # dnr.toml: postgres_url = "\${DATABASE_URL}"

TEXT
# `wait` (not a foreground sleep) lets Ctrl-C run the trap at once.
while true; do sleep 3600 & wait $!; done
