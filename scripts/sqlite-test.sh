#!/usr/bin/env bash
# Runs DNR's SQLite tests:
#   1. builds the loadable extension (target/release/libdnr.so) in its own
#      cargo invocation,
#   2. runs every tests/sqlite/*.sql in the real sqlite3 shell (which loads the
#      extension itself with `.load ./target/release/libdnr`) and compares the
#      output with tests/sqlite/*.expected,
#   3. runs the Rust host tests (rusqlite + load_extension of the same .so).
#
# Usage: scripts/sqlite-test.sh [--accept] [--no-rust] [NAME...]
#   --accept   write the actual output over the .expected files (review them!)
#   NAME       only run tests/sqlite/NAME.sql
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
export PATH="$HOME/.cargo/bin:$PATH"

accept=0
rust=1
only=()
for arg in "$@"; do
  case "$arg" in
    --accept) accept=1 ;;
    --no-rust) rust=0 ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) only+=("$arg") ;;
  esac
done

SQLITE3=${SQLITE3:-sqlite3}
if ! command -v "$SQLITE3" >/dev/null 2>&1; then
  echo "sqlite-test: the sqlite3 shell is missing (apt-get install sqlite3)" >&2
  exit 2
fi

echo "==> cargo build --release -p dnr-sqlite-ext" >&2
if ! cargo build --release -q -p dnr-sqlite-ext; then
  echo "sqlite-test: building the extension failed" >&2
  exit 2
fi
if [ ! -f target/release/libdnr.so ]; then
  echo "sqlite-test: target/release/libdnr.so was not built" >&2
  exit 2
fi

# Scratch files the scripts create (file databases, attached copies).
SCRATCH=target/sqlite-tests
rm -rf "$SCRATCH"
mkdir -p "$SCRATCH"

passed=0
failed=0
failures=()

if [ ${#only[@]} -gt 0 ]; then
  scripts=()
  for name in "${only[@]}"; do scripts+=("tests/sqlite/${name%.sql}.sql"); done
else
  scripts=(tests/sqlite/*.sql)
fi

for script in "${scripts[@]}"; do
  name=$(basename "$script" .sql)
  expected="tests/sqlite/$name.expected"
  actual="$SCRATCH/$name.actual"
  # Unbuffered, so that results (stdout) and errors (stderr) interleave in
  # statement order; the exit status is ignored, the output is the test.
  stdbuf -o0 -e0 "$SQLITE3" -batch :memory: <"$script" >"$actual" 2>&1
  if [ "$accept" = 1 ]; then
    cp "$actual" "$expected"
    echo "accepted $name"
    passed=$((passed + 1))
  elif [ ! -f "$expected" ]; then
    echo "FAIL $name: no $expected (run with --accept, then review it)"
    failed=$((failed + 1))
    failures+=("$name")
  elif diff -u "$expected" "$actual" >"$SCRATCH/$name.diff"; then
    echo "ok   $name"
    passed=$((passed + 1))
  else
    echo "FAIL $name"
    cat "$SCRATCH/$name.diff"
    failed=$((failed + 1))
    failures+=("$name")
  fi
done

if [ "$rust" = 1 ] && [ ${#only[@]} -eq 0 ]; then
  # The host tests load the .so built above; built in their own invocation
  # (rusqlite `bundled` must not unify with the extension's features).
  echo "==> cargo test -p dnr-sqlite (rusqlite host loading target/release/libdnr.so)" >&2
  cargo test -q -p dnr-sqlite >"$SCRATCH/rust.log" 2>&1
  status=$?
  tests=$(awk '/^test result: ok/ { n += $4 } END { print n + 0 }' "$SCRATCH/rust.log")
  if [ "$status" -eq 0 ] && [ "${tests:-0}" -gt 0 ]; then
    echo "ok   rust host tests ($tests tests)"
    passed=$((passed + 1))
  else
    echo "FAIL rust host tests (see $SCRATCH/rust.log)"
    tail -40 "$SCRATCH/rust.log"
    failed=$((failed + 1))
    failures+=("rust")
  fi
fi

if [ ${#only[@]} -eq 0 ]; then
  # Unmodified Python hosts: Debian's python3, whose sqlite3 module can
  # load extensions (pyenv's python3 cannot), its sqlite3 module alone, and
  # SQLAlchemy and Django.
  # A venv from the same python3 with the ORMs (made once, reused).
  venv=target/py-venv
  if ! "$venv/bin/python" -c 'import sqlalchemy, django' >/dev/null 2>&1; then
    echo "==> python3 -m venv $venv; pip install -r tests/python/requirements.txt" >&2
    rm -rf "$venv"
    /usr/bin/python3 -m venv "$venv"
    "$venv/bin/pip" install -q -r tests/python/requirements.txt
  fi
  echo "==> $venv/bin/python -m unittest discover tests/python" >&2
  if DNR_LIB="$PWD/target/release/libdnr" "$venv/bin/python" -m unittest discover -s tests/python -t tests/python >"$SCRATCH/python.log" 2>&1; then
    echo "ok   python host tests"
    passed=$((passed + 1))
  else
    echo "FAIL python host tests"
    tail -40 "$SCRATCH/python.log"
    failed=$((failed + 1))
    failures+=("python")
  fi
fi

if [ ${#only[@]} -eq 0 ]; then
  # Node's better-sqlite3, with its own SQLite, loading the extension.
  # shellcheck source=scripts/wasm-lib.sh
  . scripts/wasm-lib.sh
  command -v node >/dev/null 2>&1 || wasm_apt_install nodejs npm
  echo "==> node --test tests/node-ext (better-sqlite3)" >&2
  if wasm_npm_ci tests/node-ext >"$SCRATCH/node.log" 2>&1 \
    && (cd tests/node-ext && DNR_LIB="$PWD/../../target/release/libdnr.so" node --test) >>"$SCRATCH/node.log" 2>&1; then
    echo "ok   better-sqlite3 host tests"
    passed=$((passed + 1))
  else
    echo "FAIL better-sqlite3 host tests"
    tail -40 "$SCRATCH/node.log"
    failed=$((failed + 1))
    failures+=("better-sqlite3")
  fi
fi

echo
if [ "$failed" -gt 0 ]; then echo "failed: ${failures[*]}"; fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
