#!/usr/bin/env bash
# Runs every benchmark and writes bench/RESULTS.md. Each figure is a ratio to
# a baseline measured in the same run (the machine is shared and noisy;
# absolute times drift, ratios much less). The report starts with the
# earlier issues' targets next to this run's figures, taken from the parts
# below it.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
export PATH="$HOME/.cargo/bin:$PATH"
mkdir -p bench
out=bench/RESULTS.md
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

{
  echo "## Core (dnr-core)"
  echo
  echo "| measure | value | baseline | ratio to baseline |"
  echo "|---|---|---|---|"
  cargo bench -q -p dnr-core --bench core 2>/dev/null | grep '^|'
} >"$work/core.md"

failed=""
skipped=""
for part in pg sqlite wasm exists pg-signed ops transfer citus; do
  script=scripts/$part-bench.sh
  echo "==> $script" >&2
  prev=""
  [ -f "bench/$part.md" ] && prev="$work/$part.prev" && mv "bench/$part.md" "$prev"
  status=0
  bash "$script" | tee "$work/$part.log" >&2 || status=${PIPESTATUS[0]}
  if [ "$status" = 77 ]; then
    # 77: what the part needs cannot be had on this machine (Citus)
    echo "skipped: $script ($(tail -1 "$work/$part.log"))" >&2
    skipped="$skipped $part"
    { echo; echo "## $part"; echo; echo "Skipped: $(tail -1 "$work/$part.log")"; } >"$work/$part.md"
    # keep the figures of an earlier run where it could
    [ -n "$prev" ] && mv "$prev" "bench/$part.md"
    continue
  elif [ "$status" != 0 ]; then
    echo "error: $script failed" >&2
    failed="$failed $part"
  fi
  if [ -f "bench/$part.md" ]; then
    { echo; cat "bench/$part.md"; } >"$work/$part.md"
  else
    # Scripts that only print: keep their report verbatim.
    { echo; echo "## $part"; echo; echo '```'; cat "$work/$part.log"; echo '```'; } >"$work/$part.md"
  fi
done

# first_match PATTERN FILE: the first line matching PATTERN, or "?"
first_match() { grep -m1 -e "$1" "$2" 2>/dev/null || echo "?"; }
# ratios LINE: the "(1.23×)" ratios of a table row, comma-separated
ratios() { grep -o '([0-9.]*×)' <<<"$1" | tr -d '()' | paste -sd, | sed 's/,/, /g'; }
# pairs LINE NAME...: a row's cells after the first, two per NAME, as
# "NAME a / b, ..."
pairs() {
  local line=$1
  shift
  awk -F'|' -v names="$*" '{ n = split(names, name, " "); s = ""
    for (i = 1; i <= n; i++) { a = $(2 * i + 1); b = $(2 * i + 2); gsub(/ /, "", a); gsub(/ /, "", b)
      s = s (s == "" ? "" : ", ") name[i] " " a " / " b }
    print s }' <<<"$line"
}
# pg_same_row LABEL: the row of LABEL in the PostgreSQL report's "same round trip" table
pg_same_row() { sed -n '/^## same:/,/^## own:/p' "$work/pg.md" | first_match "^| $1" /dev/stdin; }

targets() {
  local pg_vs_cd pg_ins wasm_ins wasm_query
  pg_vs_cd=$(first_match '^| same |' "$work/pg.md")
  pg_ins=$(grep '^| same |' "$work/pg.md" | sed -n 2p)
  wasm_ins=$(first_match 'inserts (enforced view):' "$work/wasm.md")
  wasm_query=$(first_match 'enforced query:' "$work/wasm.md")
  echo "## Targets of the earlier issues, and this run"
  echo
  echo "| target | this run | where |"
  echo "|---|---|---|"
  echo "| PostgreSQL (a) DNR ≤ 1.05× the no-RLS baseline (b), context set in the same round trip | point, count, range: $(ratios "$(pg_same_row '(a)')") (hand-written (c): $(ratios "$(pg_same_row '(c)')"); (d): $(ratios "$(pg_same_row '(d)')")) | PostgreSQL, \"same\" |"
  echo "| PostgreSQL (a) never worse than (c) or (d), same round trip | latency (a)/(c) / (a)/(d): $(pairs "$pg_vs_cd" point count range); server instructions (a)/(c) / (a)/(d): $(pairs "$pg_ins" point) | PostgreSQL, summary |"
  # SQLite rows with a target: "| case | plain | enforced | ratio | ≤ 1.10× ok |"
  grep '≤' "$work/sqlite.md" | awk -F'|' '{ for (i = 2; i <= 6; i++) gsub(/^ +| +$/, "", $i)
    match($6, /[0-9.]+×/); target = substr($6, RSTART, RLENGTH); verdict = substr($6, RSTART + RLENGTH + 1)
    printf "| SQLite %s ≤ %s plain | %s (%s) | SQLite |\n", $2, target, $5, verdict }'
  grep -h 'exists listing (a)' "$work/exists.md" 2>/dev/null | sed 's/$/ relationship rules |/'
  # Signed context: "| measure | vs same context | vs tenant only | target |"
  grep -h '^| \(server instructions\|latency\), ' "$work/pg-signed.md" 2>/dev/null \
    | awk -F'|' '{ gsub(/^ +| +$/, "", $2); gsub(/^ +| +$/, "", $3); gsub(/^ +| +$/, "", $4)
      printf "| PostgreSQL cached set_context_signed ≤ 1.1× set_context (%s) | %s (tenant only: %s) | signed context |\n", $2, $3, $4 }'
  # Fleet operations: "| operation | dnr | loop | ratio | ≤ T s: ok |"
  grep -h '^| \(SQLite\|PostgreSQL\): ' "$work/ops.md" 2>/dev/null \
    | awk -F'|' '{ for (i = 2; i <= 6; i++) gsub(/^ +| +$/, "", $i)
      printf "| %s %s | %s (naive serial loop %s, %s) | operations |\n", $2, $6, $3, $4, $5 }'
  # Citus: "| query | (a) ... | (a') ... | (b) ... |", cells "12.3 ms (1.23×), 32 tasks"
  grep -h '^| \(point\|count\): ' "$work/citus.md" 2>/dev/null \
    | awk -F'|' '{ q = $2; sub(/:.*/, "", q); gsub(/^ +/, "", q)
      for (i = 3; i <= 5; i++) { gsub(/^ +| +$/, "", $i); sub(/^[0-9.]+ ms \(/, "", $i); sub(/\),/, ",", $i) }
      printf "| Citus %s: DNR (context only / context + `WHERE tenant_id`) vs hand-written `WHERE tenant_id` on the distributed table | %s / %s (baseline %s) | Citus |\n", q, $3, $4, $5 }' || true
  # The package's .wasm, from the JSON line of scripts/wasm-bench.mjs (bytes)
  local raw gz
  raw=$(grep -o '"size":{"raw":[0-9]*' "$work/wasm.md" | grep -o '[0-9]*$' || echo "?")
  gz=$(grep -o '"gzip":[0-9]*' "$work/wasm.md" | head -1 | grep -o '[0-9]*$' || echo "?")
  echo "| npm .wasm ≤ 2.0 MB raw and ≤ 1.1 MB gzipped (issue 22: with sqlparser) | $raw bytes raw, $gz gzipped (Node zlib, default level) | wasm |"
  echo "| WASM ≤ 2× native (inserts, enforced query; locked connections) | $(grep -o 'native/wasm [0-9.]*x' <<<"$wasm_ins" | cut -d' ' -f2), $(grep -o 'native/wasm [0-9.]*x' <<<"$wasm_query" | cut -d' ' -f2) | wasm |"
  echo
}

{
  echo "# DNR benchmark results"
  echo
  echo "Produced by \`just bench\` (scripts/bench.sh) in one run on $(date -u +%Y-%m-%d) on $(uname -m), $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo) RAM."
  echo
  targets
  cat "$work/core.md" "$work/pg.md" "$work/sqlite.md" "$work/wasm.md" "$work/ops.md" "$work/citus.md"
} >"$work/RESULTS.md"
mv "$work/RESULTS.md" "$out"
cat "$out"
if [ -n "$skipped" ]; then
  echo "skipped:$skipped (what they need cannot be had here; see $out)" >&2
fi
if [ -n "$failed" ]; then
  echo "error: benchmarks failed:$failed ($out is incomplete)" >&2
  exit 1
fi
