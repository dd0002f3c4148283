#!/usr/bin/env bash
# Builds and installs Citus into the machine's PostgreSQL 15 from the vendored
# source (Citus is not packaged for it), idempotently: does nothing when
# $(pg_config --pkglibdir)/citus.so is already this version.
#
# Source: $DNR_CITUS_VENDOR, else $ROOT/../shared/vendor, holding
#   citus-13.2.2.tar.gz                    the Citus source (AGPL-3.0)
#   citus-13.2.2-pg15.20-compat.patch      a one-line fix for PostgreSQL 15.20
# The tree is unpacked and built in target/citus-build/ (make -j2, or
# $DNR_CITUS_JOBS); `make install` runs with sudo when the PostgreSQL
# directories are not writable. Build dependencies come from apt-get.
#
# Exit status: 0 installed (or already there), 77 the vendor directory or its
# files are missing (callers treat it as "skipped"), 1 a build step failed.
# Environment: PG_CONFIG (default /usr/bin/pg_config), DNR_CITUS_VENDOR,
# DNR_CITUS_JOBS (default 2), DNR_CITUS_FORCE=1 rebuilds anyway.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PG_CONFIG=${PG_CONFIG:-/usr/bin/pg_config}
CITUS_VERSION=13.2.2
VENDOR=${DNR_CITUS_VENDOR:-$ROOT/../shared/vendor}
TARBALL="$VENDOR/citus-$CITUS_VERSION.tar.gz"
PATCH="$VENDOR/citus-$CITUS_VERSION-pg15.20-compat.patch"
BUILD_DIR="$ROOT/target/citus-build"
JOBS=${DNR_CITUS_JOBS:-2}

log() { printf '==> citus: %s\n' "$*" >&2; }
die() { printf 'error: citus: %s\n' "$*" >&2; exit 1; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

[ -x "$PG_CONFIG" ] || die "$PG_CONFIG not found (install postgresql-server-dev-15; scripts/setup.sh does)"
PKGLIBDIR=$("$PG_CONFIG" --pkglibdir)
SHAREDIR=$("$PG_CONFIG" --sharedir)

# The installed citus.so names its release ("Citus 13.2.2 on ...", what
# citus_version() returns); the control file must be there too.
citus_installed() {
  [ -f "$PKGLIBDIR/citus.so" ] && [ -f "$SHAREDIR/extension/citus.control" ] \
    && grep -aq "Citus $CITUS_VERSION " "$PKGLIBDIR/citus.so"
}

if [ "${DNR_CITUS_FORCE:-0}" != 1 ] && citus_installed; then
  log "Citus $CITUS_VERSION already installed in $PKGLIBDIR"
  exit 0
fi

if [ ! -f "$TARBALL" ] || [ ! -f "$PATCH" ]; then
  printf 'citus: the Citus source is not available: expected %s and %s\n' "$TARBALL" "$PATCH" >&2
  printf 'citus: set DNR_CITUS_VENDOR to the directory holding them; skipping the Citus build\n' >&2
  exit 77
fi

need_apt=()
# What ../shared/TOOLCHAIN.md lists, and the tools the build runs.
for pkg in postgresql-server-dev-15 libkrb5-dev liblz4-dev libzstd-dev libcurl4-openssl-dev \
           make gcc patch tar gzip; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
done
if [ ${#need_apt[@]} -gt 0 ]; then
  log "apt-get install ${need_apt[*]}"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null \
    || { as_root apt-get update -qq \
         && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null; } \
    || die "apt-get install ${need_apt[*]} failed"
fi

start=$(date +%s)
log "unpacking $TARBALL into $BUILD_DIR"
rm -rf "$BUILD_DIR"
mkdir -p "$BUILD_DIR"
tar -xzf "$TARBALL" -C "$BUILD_DIR"
SRC="$BUILD_DIR/citus-$CITUS_VERSION"
[ -d "$SRC" ] || die "the tarball has no citus-$CITUS_VERSION/ directory"
log "applying $(basename "$PATCH")"
(cd "$SRC" && patch -p1 -s <"$PATCH") || die "the patch does not apply"

log "configure"
(cd "$SRC" && ./configure PG_CONFIG="$PG_CONFIG" >"$BUILD_DIR/configure.log" 2>&1) \
  || { tail -n 30 "$BUILD_DIR/configure.log" >&2; die "configure failed (log: $BUILD_DIR/configure.log)"; }
log "make -j$JOBS (a few minutes)"
(cd "$SRC" && make -j"$JOBS" >"$BUILD_DIR/make.log" 2>&1) \
  || { tail -n 30 "$BUILD_DIR/make.log" >&2; die "make failed (log: $BUILD_DIR/make.log)"; }

log "make install into $PKGLIBDIR"
if [ -w "$PKGLIBDIR" ] && [ -w "$SHAREDIR/extension" ]; then
  (cd "$SRC" && make install >"$BUILD_DIR/install.log" 2>&1)
else
  (cd "$SRC" && sudo make install >"$BUILD_DIR/install.log" 2>&1)
fi || { tail -n 30 "$BUILD_DIR/install.log" >&2; die "make install failed (log: $BUILD_DIR/install.log)"; }

citus_installed || die "make install finished but $PKGLIBDIR/citus.so is not Citus $CITUS_VERSION"
log "Citus $CITUS_VERSION installed in $(( $(date +%s) - start )) s"
