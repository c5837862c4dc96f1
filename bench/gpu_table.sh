#!/usr/bin/env bash
# README "On a GPU": the profile table's workloads (bench/profile_table.sh) timed with
# `bench-step --device cuda` at their shipped sizes, one markdown row each (median ms per step of
# --steps timed steps after --warmup, and the fastest). Needs a CUDA build ("On a GPU").
# Usage: bench/gpu_table.sh [ROW ...]   rows as bench/profile_table.sh's (default: all)
# RETORT_BIN overrides ./build/retort; DEVICE (default cuda); STEPS / WARMUP (default 10 / 3);
# fvgen-update needs FVGEN_SCENES=DIR with DIR/train.safetensors and DIR/test.safetensors.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${RETORT_BIN:-./build/retort}
[ -x "$BIN" ] || { echo "gpu_table: $BIN not found; build first" >&2; exit 2; }
device=${DEVICE:-cuda}
. bench/workload_rows.sh
rows=("$@")
[ ${#rows[@]} -gt 0 ] || rows=("${ALL_ROWS[@]}")
for r in "${rows[@]}"; do row_args gpu_table "$r"; done  # every row known before the table starts
echo "| workload | ms per step on $device (median) | fastest | steps timed |"
echo "|---|---|---|---|"
for r in "${rows[@]}"; do
  row_args gpu_table "$r"
  j=$("$BIN" bench-step "${args[@]}" --device "$device" --steps "${STEPS:-10}" --warmup "${WARMUP:-3}" 2>/dev/null | tail -n 1) ||
    { echo "| \`$r\` | failed | | |"; continue; }
  python3 -c '
import json, sys
j = json.loads(sys.argv[2])
ms = next(j[k] for k in ("ms_per_update", "ms_per_step", "ms_per_run") if k in j)
steps = j.get("updates", j.get("steps"))
mn = j["ms_min"]
print(f"| `{sys.argv[1]}` | {ms:.1f} | {mn:.1f} | {steps} |")' "$r" "$j"
done
