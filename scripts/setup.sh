#!/usr/bin/env bash
# Installs everything DNR's builds and test suites need, idempotently.
# Safe to run repeatedly: each step checks before it installs.
set -euo pipefail

PGRX_VERSION=0.18.0
PG_CONFIG=${PG_CONFIG:-/usr/bin/pg_config}

log() { printf '==> %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

need_apt=()
for pkg in postgresql-server-dev-15 postgresql-15 pgbouncer libclang-dev clang sudo libsqlite3-dev sqlite3 pkg-config python3 python3-venv; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
done
if [ "${DNR_SKIP_BROWSER:-0}" != 1 ]; then
  dpkg -s chromium >/dev/null 2>&1 || need_apt+=(chromium)
fi
if [ ${#need_apt[@]} -gt 0 ]; then
  log "apt-get install ${need_apt[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

export PATH="$HOME/.cargo/bin:$PATH"

if ! command -v just >/dev/null 2>&1; then
  log "cargo install just"
  cargo install just --locked -q || cargo install just -q
fi

if ! cargo pgrx --version 2>/dev/null | grep -q "$PGRX_VERSION"; then
  log "cargo install cargo-pgrx $PGRX_VERSION"
  cargo install cargo-pgrx --version "$PGRX_VERSION" --locked -q
fi

if [ ! -f "$HOME/.pgrx/config.toml" ] || ! grep -q "pg15" "$HOME/.pgrx/config.toml"; then
  log "cargo pgrx init --pg15 $PG_CONFIG"
  cargo pgrx init --pg15 "$PG_CONFIG" >/dev/null
fi

# Citus for tests/citus (scripts/citus-setup.sh): built from ../shared/vendor
# only when missing; without the vendored source it is skipped (exit 77).
if [ "${DNR_SKIP_CITUS:-0}" != 1 ]; then
  citus_status=0
  "$(dirname "$0")/citus-setup.sh" || citus_status=$?
  if [ "$citus_status" = 77 ]; then
    log "Citus source not found: the Citus tests will be skipped"
  elif [ "$citus_status" != 0 ]; then
    exit "$citus_status"
  fi
fi

log "setup complete"
