# Shared by scripts/wasm-*.sh: installs what the WASM package's build and
# tests need, idempotently. Source it from the repository root.

wasm_log() { printf '==> %s\n' "$*" >&2; }

wasm_as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

wasm_apt_install() {
  local missing=()
  for pkg in "$@"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    wasm_log "apt-get install ${missing[*]}"
    wasm_as_root apt-get update -qq
    wasm_as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

# The wasm-bindgen version the crate is built with: the CLI must match it.
wasm_bindgen_version() {
  awk '/^name = "wasm-bindgen"$/ { getline; gsub(/"/, "", $3); print $3; exit }' Cargo.lock
}

wasm_ensure_build_tools() {
  export PATH="$HOME/.cargo/bin:$PATH"
  # sqlite-wasm-rs compiles SQLite's C source for wasm32 with clang.
  command -v clang >/dev/null 2>&1 || wasm_apt_install clang
  if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
    wasm_log "rustup target add wasm32-unknown-unknown"
    rustup target add wasm32-unknown-unknown
  fi
  local version
  version=$(wasm_bindgen_version)
  if [ -z "$version" ]; then
    # A fresh lock file: let cargo resolve the crate's dependencies first.
    cargo generate-lockfile >/dev/null 2>&1 || true
    cargo metadata --format-version 1 >/dev/null
    version=$(wasm_bindgen_version)
  fi
  if ! wasm-bindgen --version 2>/dev/null | grep -qx "wasm-bindgen $version"; then
    # Not --locked: one of the CLI's locked dependencies is gone from the
    # registry; the exact version pin is what matters.
    wasm_log "cargo install wasm-bindgen-cli $version"
    cargo install wasm-bindgen-cli --version "$version" --force -q
  fi
}

wasm_ensure_test_tools() {
  command -v node >/dev/null 2>&1 || wasm_apt_install nodejs npm
  if [ "${DNR_SKIP_BROWSER:-0}" != 1 ] && [ ! -x /usr/bin/chromium ]; then
    wasm_apt_install chromium
  fi
}

# `npm ci` in a directory when its lock file changed since the last install.
wasm_npm_ci() {
  local dir=$1
  local stamp="$dir/node_modules/.dnr-lock-stamp"
  if [ -f "$stamp" ] && cmp -s "$dir/package-lock.json" "$stamp"; then
    return 0
  fi
  wasm_log "npm ci in $dir"
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
  cp "$dir/package-lock.json" "$stamp"
}
