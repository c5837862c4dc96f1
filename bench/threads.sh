#!/usr/bin/env bash
# The thread policy, measured: every bench-step workload at 1 and at 2 LibTorch threads (OpenBLAS at
# 1 thread), the two alternated round by round. Prints one markdown table: medians over the
# rounds, min-max, and the speedup of 2 threads (ratio of the medians). Run it on an otherwise idle
# machine to see what a second core gives, and beside another job to see what it costs.
# Usage: bench/threads.sh [ROUNDS] [WORKLOAD ...]   (RETORT_BIN overrides ./build/retort)
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}
shift || true
BIN=${RETORT_BIN:-./build/retort}
[ -x "$BIN" ] || { echo "threads: $BIN not found; build first (scripts/build.sh)" >&2; exit 2; }
workloads=("$@")
[ ${#workloads[@]} -gt 0 ] || workloads=(mlp hash-encoding field-render unet-train ddim-sample dmd2-update fvgen-update generate3d)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for i in $(seq "$ROUNDS"); do
  for w in "${workloads[@]}"; do
    for t in 1 2; do
      "$BIN" bench-step --workload "$w" --threads "$t" --blas-threads 1 2>/dev/null >>"$tmp/$w.$t.jsonl"
    done
  done
  echo "round $i of $ROUNDS done (load $(cut -d' ' -f1 /proc/loadavg))" >&2
done
python3 - "$tmp" "${workloads[@]}" <<'PYEOF'
import json, statistics, sys
d, workloads = sys.argv[1], sys.argv[2:]
print("| workload | metric | 1 thread | 2 threads | 2-thread speedup |")
print("|---|---|---|---|---|")
for w in workloads:
    runs = {t: [json.loads(l) for l in open(f"{d}/{w}.{t}.jsonl")] for t in (1, 2)}
    key = next(k for k in ("ms_per_update", "ms_per_image", "kernel_ms", "ms_per_step") if k in runs[1][0])
    v = {t: [r[key] for r in runs[t]] for t in (1, 2)}
    cell = lambda xs: f"{statistics.median(xs):.2f} ({min(xs):.2f}-{max(xs):.2f})"
    print(f"| {w} | {key} | {cell(v[1])} | {cell(v[2])} | **{statistics.median(v[1]) / statistics.median(v[2]):.2f}x** |")
PYEOF
