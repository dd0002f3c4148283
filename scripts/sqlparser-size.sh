#!/usr/bin/env bash
# What `sqlparser` alone weighs in a .wasm (the npm package's budget with it:
# 2.0 MB raw, 1.1 MB gzipped for everything): builds two throwaway wasm32 modules that
# contain only sqlparser (its parser with the SQLite dialect; its tokenizer
# alone), at the smallest settings there are (opt-level "z", fat LTO, one
# codegen unit, panic=abort, wasm-opt -Oz), and prints their sizes.
# docs/design-changes.md ("On `sqlparser`") records the figures.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/wasm-lib.sh
wasm_ensure_build_tools
wasm_npm_ci scripts/wasm-tools
wasm_opt=$PWD/scripts/wasm-tools/node_modules/.bin/wasm-opt
version=$(sed -n 's/^sqlparser = { version = "\([^"]*\)".*/\1/p' Cargo.toml)
dir=target/sqlparser-size
mkdir -p "$dir/src"

measure() {
  local name=$1 body=$2
  cat >"$dir/Cargo.toml" <<TOML
[package]
name = "sqlparser-size"
version = "0.0.0"
edition = "2021"
publish = false
[lib]
crate-type = ["cdylib"]
path = "src/lib.rs"
[dependencies]
sqlparser = { version = "$version", default-features = false, features = ["std", "visitor"] }
[profile.release]
opt-level = "z"
lto = "fat"
codegen-units = 1
panic = "abort"
[workspace]
TOML
  printf '%s\n' "$body" >"$dir/src/lib.rs"
  cargo build -q --release --target wasm32-unknown-unknown \
    --manifest-path "$dir/Cargo.toml" --target-dir "$dir/target"
  "$wasm_opt" -Oz --strip-debug --strip-producers \
    "$dir/target/wasm32-unknown-unknown/release/sqlparser_size.wasm" -o "$dir/$name.wasm"
  printf '%-44s %9d bytes %8d gzipped\n' "$name" \
    "$(stat -c %s "$dir/$name.wasm")" "$(gzip -9 -c "$dir/$name.wasm" | wc -c)"
}

echo "sqlparser $version, wasm32-unknown-unknown, opt-level z + wasm-opt -Oz:"
measure "parse + visit + print (SQLiteDialect)" '
use std::ops::ControlFlow;
use sqlparser::ast::{visit_relations_mut, Ident, ObjectNamePart};
use sqlparser::dialect::SQLiteDialect;
use sqlparser::parser::Parser;
#[no_mangle]
pub extern "C" fn rewrite(ptr: *const u8, len: usize) -> usize {
    // SAFETY: the caller passes len readable bytes.
    let bytes = unsafe { std::slice::from_raw_parts(ptr, len) };
    let Ok(sql) = std::str::from_utf8(bytes) else { return 0 };
    let Ok(mut statements) = Parser::parse_sql(&SQLiteDialect {}, sql) else { return 0 };
    let _ = visit_relations_mut(&mut statements, |name| {
        name.0.insert(0, ObjectNamePart::Identifier(Ident::new("main")));
        ControlFlow::<()>::Continue(())
    });
    statements.iter().map(|s| s.to_string().len()).sum()
}'
measure "tokenizer only (SQLiteDialect)" '
use sqlparser::dialect::SQLiteDialect;
use sqlparser::tokenizer::Tokenizer;
#[no_mangle]
pub extern "C" fn tokens(ptr: *const u8, len: usize) -> usize {
    // SAFETY: the caller passes len readable bytes.
    let bytes = unsafe { std::slice::from_raw_parts(ptr, len) };
    let Ok(sql) = std::str::from_utf8(bytes) else { return 0 };
    Tokenizer::new(&SQLiteDialect {}, sql).tokenize_with_location().map_or(0, |t| t.len())
}'
if [ -f dnr-wasm/pkg/dnr_wasm_bg.wasm ]; then
  printf '%-44s %9d bytes %8d gzipped\n' "the npm package's .wasm now (dnr-wasm/pkg)" \
    "$(stat -c %s dnr-wasm/pkg/dnr_wasm_bg.wasm)" "$(gzip -9 -c dnr-wasm/pkg/dnr_wasm_bg.wasm | wc -c)"
fi
