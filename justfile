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
    cargo clippy -p dnr-core -p dnr-cli --all-targets -- -D warnings
