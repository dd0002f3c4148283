#!/usr/bin/env bash
# The one test command: installs what is missing (idempotently), then runs
# every test suite. Usage: bash scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

bash scripts/setup.sh

failed=()
passed=0
run() {
  local name=$1
  shift
  printf '\n==== %s ====\n' "$name"
  if "$@"; then
    printf '==== %s: ok\n' "$name"
    passed=$((passed + 1))
  else
    printf '==== %s: FAILED\n' "$name"
    failed+=("$name")
  fi
}

# The SQLite extension is linted in its own invocation: its
# `loadable_extension` SQLite must not unify with the others' `bundled` one.
# The PostgreSQL extension builds from its own directory (its target dir).
run "lint (fmt, clippy)" bash -c 'cargo fmt --all --check \
  && cargo clippy -q -p dnr-core -p dnr-cli -p dnr-sqlite -p dnr-wasm -p dnr-conformance --all-targets -- -D warnings \
  && cargo clippy -q --release -p dnr-sqlite-ext -- -D warnings \
  && (cd dnr-pgext && cargo clippy -q --release --features pg15 --no-default-features -- -D warnings)'
run "core and cli (cargo test)" cargo test -q -p dnr-core -p dnr-cli
run "demo" bash -c 'cargo run -q -p dnr-cli -- demo >/dev/null'
for suite in scripts/pg-test.sh scripts/sqlite-test.sh scripts/wasm-test.sh scripts/conformance-test.sh; do
  if [ -f "$suite" ]; then
    run "$suite" bash "$suite"
  fi
done
# Citus (built from ../shared/vendor by setup.sh): 77 means it cannot be had.
run "scripts/citus-test.sh" bash -c 'status=0; bash scripts/citus-test.sh || status=$?
  if [ "$status" = 77 ]; then echo "skipped: Citus cannot be built here (no ../shared/vendor)"; exit 0; fi
  exit "$status"'

printf '\n'
if [ ${#failed[@]} -gt 0 ]; then
  printf 'FAILED suites: %s\n' "${failed[*]}"
fi
echo "suites: $passed passed, ${#failed[@]} failed"
[ ${#failed[@]} -eq 0 ]
