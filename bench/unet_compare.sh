#!/usr/bin/env bash
# retort's UNet workloads against the same work in Python PyTorch (bench/python/unet.py: the same
# network loaded from the same weights, the same training step and DDIM-with-CFG loop; Debian's
# python3-torch, the same LibTorch 1.13 underneath). For each round, each workload runs in C++ and
# then in Python, so machine noise hits both alike; prints a markdown table of medians over rounds,
# their min-max, and the ratio Python / C++ (of the medians; min-max over the rounds' ratios).
#   unet-train:  one teacher training step of the world teacher (batch 64, 32 px), ms per step
#   ddim-sample: DDIM-50 with CFG 3 of the Fashion-MNIST teacher, 64 images, ms per image
# Usage: bench/unet_compare.sh [ROUNDS] [flags for both programs, e.g. --threads 2]
# Exit 2 when /usr/bin/python3 has no torch.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-5}
shift || true
BIN=${RETORT_BIN:-./build/retort}
PY=/usr/bin/python3
if ! $PY -c 'import torch' 2>/dev/null; then
  echo "unet_compare: skipped: $PY has no torch (Debian: apt-get install python3-torch)" >&2
  exit 2
fi
[ -x "$BIN" ] || { echo "unet_compare: $BIN not found; build first (scripts/build.sh)" >&2; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export OPENBLAS_NUM_THREADS=1
for i in $(seq "$ROUNDS"); do
  for w in unet-train ddim-sample; do
    $BIN bench-step --workload "$w" "$@" >>"$tmp/$w.cpp.jsonl"
    $PY bench/python/unet.py --workload "$w" "$@" >>"$tmp/$w.py.jsonl"
  done
  echo "round $i of $ROUNDS done" >&2
done
$PY - "$tmp" "$ROUNDS" <<'PYEOF'
import json, statistics, sys
d, rounds = sys.argv[1], int(sys.argv[2])
metric = {"unet-train": "ms_per_step", "ddim-sample": "ms_per_image"}
print(f"{rounds} alternated rounds; medians over rounds (min-max)\n")
print("| workload | metric | retort (C++) | PyTorch (Python) | Python / C++ |")
print("|---|---|---|---|---|")
for w, key in metric.items():
    c = [json.loads(l) for l in open(f"{d}/{w}.cpp.jsonl")]
    p = [json.loads(l) for l in open(f"{d}/{w}.py.jsonl")]
    cv, pv = [r[key] for r in c], [r[key] for r in p]
    ratios = [b / a for a, b in zip(cv, pv)]
    r0 = c[0]
    what = (f"{w}: batch {r0['batch']}, {r0['resolution']} px, {r0['params']} params, {r0['threads']} thread(s)"
            + (f", {r0['sampler_steps']} DDIM steps, cfg {r0['cfg']}" if w == "ddim-sample" else ""))
    fmt = lambda v: f"{statistics.median(v):.2f} ({min(v):.2f}-{max(v):.2f})"
    print(f"| {what} | {key} | {fmt(cv)} | {fmt(pv)} | "
          f"**{statistics.median(pv) / statistics.median(cv):.2f}x** ({min(ratios):.2f}-{max(ratios):.2f}) |")
PYEOF
