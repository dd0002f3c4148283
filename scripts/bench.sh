#!/usr/bin/env bash
# Runs every benchmark and writes bench/RESULTS.md. Each figure is a ratio to
# a baseline measured in the same run (the machine is shared and noisy;
# absolute times drift, ratios much less).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
export PATH="$HOME/.cargo/bin:$PATH"
mkdir -p bench
out=bench/RESULTS.md
{
  echo "# DNR benchmark results"
  echo
  echo "Produced by \`just bench\` (scripts/bench.sh) in one run on $(date -u +%Y-%m-%d) on $(uname -m), $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo) RAM."
  echo
  echo "## Core (dnr-core)"
  echo
  echo "| measure | value | baseline | ratio to baseline |"
  echo "|---|---|---|---|"
  cargo bench -q -p dnr-core --bench core 2>/dev/null | grep '^|'
} >"$out.tmp"
failed=""
for part in pg sqlite wasm; do
  script=scripts/$part-bench.sh
  if [ -f "$script" ]; then
    echo "==> $script" >&2
    rm -f "bench/$part.md"
    log=$(mktemp)
    if ! bash "$script" | tee "$log" >&2; then
      echo "error: $script failed" >&2
      failed="$failed $part"
    fi
    if [ -f "bench/$part.md" ]; then
      { echo; cat "bench/$part.md"; } >>"$out.tmp"
    else
      # Scripts that only print: keep their report verbatim.
      { echo; echo "## $part"; echo; echo '```'; cat "$log"; echo '```'; } >>"$out.tmp"
    fi
    rm -f "$log"
  fi
done
mv "$out.tmp" "$out"
cat "$out"
if [ -n "$failed" ]; then
  echo "error: benchmarks failed:$failed ($out is incomplete)" >&2
  exit 1
fi
