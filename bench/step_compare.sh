#!/usr/bin/env bash
# Side-by-side speed of one MLP-denoiser training step: retort (LibTorch C++) vs the same step in
# Python PyTorch (Debian's python3-torch, the same 1.13 LibTorch underneath). The two alternate
# ROUNDS times so machine noise hits both alike; prints a table of medians and the ratio.
# Usage: bench/step_compare.sh [ROUNDS] [extra flags for both, e.g. --batch 1024 --hidden 256]
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-5}
shift || true
BIN=./build/retort
PY=/usr/bin/python3
tmp=$(mktemp -d)
for i in $(seq "$ROUNDS"); do
  $BIN bench-step "$@" >>"$tmp/cpp.jsonl"
  OPENBLAS_NUM_THREADS=1 $PY bench/python/mlp_step.py "$@" >>"$tmp/py.jsonl"
done
$PY - "$tmp" <<'PYEOF'
import json, statistics, sys
d = sys.argv[1]
rows = {k: [json.loads(l) for l in open(f"{d}/{k}.jsonl")] for k in ("cpp", "py")}
med = {k: statistics.median(r["ms_per_step"] for r in v) for k, v in rows.items()}
r0 = rows["cpp"][0]
print(f"MLP denoiser training step, batch {r0['batch']}, dim {r0['dim']}, hidden {r0['hidden']}, "
      f"blocks {r0['blocks']}, {r0['steps']} steps x {len(rows['cpp'])} rounds")
print("| implementation | median ms/step | min | max |")
print("|---|---|---|---|")
for k, name in (("cpp", "retort (LibTorch C++)"), ("py", "PyTorch (Python)")):
    v = [r["ms_per_step"] for r in rows[k]]
    print(f"| {name} | {med[k]:.3f} | {min(v):.3f} | {max(v):.3f} |")
print(f"\nPython / C++ time ratio: {med['py'] / med['cpp']:.2f}x")
PYEOF
rm -rf "$tmp"
