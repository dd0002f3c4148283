# DNR's recipe book. `just --list` shows the recipes.

# Build the core, the CLI and the SQLite extension.
build:
    cargo build -p dnr-core -p dnr-cli
    cargo build --release -p dnr-sqlite-ext

# Every test suite (installs what is missing first).
test:
    bash scripts/test.sh

# The main job: two tenants on embedded SQLite.
demo:
    cargo run -p dnr-cli -- demo

# Core and CLI unit, golden and property tests.
test-core:
    cargo test -p dnr-core -p dnr-cli

# Review changed golden files of the compiled SQL.
review:
    cargo insta review

lint:
    cargo fmt --all --check
    cargo clippy -p dnr-core -p dnr-cli -p dnr-sqlite -p dnr-wasm -p dnr-conformance --all-targets -- -D warnings
    cargo clippy --release -p dnr-sqlite-ext -- -D warnings

# Differential conformance with N generated cases (default 300) and E
# relationship cases (`exists` rules, default 100).
conformance N="300" E="100":
    bash scripts/conformance-test.sh {{N}} {{E}}

# Conformance against Citus only (a 3-node cluster): N generated cases
# (default 300), E relationship cases counted as not applicable.
conformance-citus N="300" E="20":
    DNR_CONFORMANCE_CITUS_ONLY=1 bash scripts/conformance-test.sh {{N}} {{E}}

# Replay one saved conformance case against every engine.
conformance-replay FILE:
    bash scripts/conformance-test.sh 0 --replay {{FILE}}

# Every benchmark; writes bench/RESULTS.md with ratios to same-run baselines.
bench:
    bash scripts/bench.sh

# What sqlparser alone would add to the npm .wasm (why the rewriter is not on it).
sqlparser-size:
    bash scripts/sqlparser-size.sh

# Build the npm package into dnr-wasm/pkg.
wasm:
    bash scripts/wasm-build.sh

# Node and headless Chromium tests of the npm package.
test-wasm:
    bash scripts/wasm-test.sh

# WASM vs the native extension (size, open+apply, inserts, enforced query).
bench-wasm:
    bash scripts/wasm-bench.sh

# SQLite extension tests: sqlite3 shell scripts and a rusqlite host.
test-sqlite *ARGS:
    bash scripts/sqlite-test.sh {{ARGS}}

# Fleet operations: tenants create and migrate over 1,000 SQLite files and
# 1,000 PostgreSQL schemas, beside naive serial loops.
bench-ops:
    bash scripts/ops-bench.sh

# Tenant files and moves: export/import rows/s beside INSERT dumps, a 1M-row move; writes bench/transfer.md.
bench-transfer:
    bash scripts/transfer-bench.sh

# Enforced vs plain SQLite tables, 1M rows over 1,000 tenants.
bench-sqlite:
    bash scripts/sqlite-bench.sh

# Build, install into the machine's PostgreSQL 15 and run the SQL tests as an ordinary role.
test-pg *ARGS:
    bash scripts/pg-test.sh {{ARGS}}

# Rewrite tests/pg/expected/ from actual output (then review every changed file).
test-pg-accept *ARGS:
    bash scripts/pg-test.sh --accept {{ARGS}}

# DNR RLS vs hand-written tenant filters, 1M rows over 1,000 tenants; writes bench/pg.md.
bench-pg:
    bash scripts/pg-bench.sh

# Citus (coordinator + 2 workers): DNR vs hand-written WHERE tenant_id, 1M rows over 1,000 tenants, shards touched; writes bench/citus.md.
bench-citus:
    bash scripts/citus-bench.sh

# A throwaway PostgreSQL with the extension, on localhost:54330, until Ctrl-C
# (prints the URLs for dnr.toml).
dev-pg:
    bash scripts/dev-postgres.sh

# Install the extension into the machine's PostgreSQL (then: CREATE EXTENSION dnr),
# with the scripts of earlier versions (ALTER EXTENSION dnr UPDATE).
install-pg:
    cd dnr-pgext && cargo pgrx install --pg-config /usr/bin/pg_config --release
    cp dnr-pgext/sql/dnr--*.sql "$(/usr/bin/pg_config --sharedir)/extension/"

# Long fuzzing run of the policy front end, evaluator and compilers (the
# test suite runs 256 cases): deep and wide generated sources on a 1 MiB
# stack; then the SQLite statement rewriter over random statement shapes and
# garbage (the suite runs 2,000).
fuzz CASES="20000":
    PROPTEST_CASES={{CASES}} cargo test --release -p dnr-core --test hostile
    PROPTEST_CASES={{CASES}} cargo test --release -p dnr-sqlite --lib rewrite

# Relationship rules: listing a user's projects (exists) vs the hand-written
# EXISTS, 100,000 projects and 1,000,000 memberships, PostgreSQL and SQLite;
# writes bench/exists.md.
bench-exists:
    bash scripts/exists-bench.sh

# Signed context: cached set_context_signed vs set_context, first Ed25519
# verification in PostgreSQL; writes bench/pg-signed.md.
bench-pg-signed:
    bash scripts/pg-signed-bench.sh

# Differential fuzzing of the SQLite statement rewriter against SQLite
# (N generated and mutated writes in two worlds; the test command runs 1,500).
fuzz-rewriter N="100000":
    PROPTEST_CASES={{N}} cargo test --release -p dnr-sqlite --test fuzz_rewriter -- --nocapture

# `dnr tenants move` back and forth, killed with -9 at N points (the suite
# kills 25): never served twice, every row once at the end.
move-kills N="200":
    DNR_MOVE_KILLS={{N}} cargo test -q -p dnr-cli --test ops_sqlite a_move_killed -- --nocapture
