#!/usr/bin/env bash
# One DMD2 update of `retort distill` against the same update in Python PyTorch
# (bench/python/dmd2.py: the same student, fake score, discriminator head, losses, AdamW, clipping,
# EMA and draw order, from the same teacher and Fashion-MNIST; Debian's python3-torch, the same
# LibTorch 1.13 underneath; `bench/python/dmd2.py --check` shows it computes the same update). For
# each round retort runs and then Python, so machine noise hits both alike; prints a markdown table
# of medians over rounds, their min-max, and the ratio Python / C++ (of the medians; min-max over
# the rounds' ratios).
#   dmd2-update: configs/fmnist-dmd2-noreg.toml from the teacher (batch 32, 16 px, 5 critic
#   updates per generator update), ms per update (each round: the median of --steps updates)
# Usage: bench/dmd2_compare.sh [ROUNDS] [flags for both programs, e.g. --threads 2, --steps 5,
#        --set distill.batch=8]
# Python's allocator as retort's (core/runtime.cpp: no mmap, no trimming): run with
#   MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=17179869184 bench/dmd2_compare.sh ...
# (glibc reads them at start; retort sets the same with mallopt, so it is unaffected).
# Exit 2 when /usr/bin/python3 has no torch.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-5}
shift || true
BIN=${RETORT_BIN:-./build/retort}
PY=/usr/bin/python3
if ! $PY -c 'import torch' 2>/dev/null; then
  echo "dmd2_compare: skipped: $PY has no torch (Debian: apt-get install python3-torch)" >&2
  exit 2
fi
[ -x "$BIN" ] || { echo "dmd2_compare: $BIN not found; build first (scripts/build.sh)" >&2; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export OPENBLAS_NUM_THREADS=1
for i in $(seq "$ROUNDS"); do
  $BIN bench-step --workload dmd2-update "$@" >>"$tmp/cpp.jsonl"
  $PY bench/python/dmd2.py --workload dmd2-update "$@" >>"$tmp/py.jsonl"
  echo "round $i of $ROUNDS done" >&2
done
$PY - "$tmp" "$ROUNDS" <<'PYEOF'
import json, statistics, sys
d, rounds = sys.argv[1], int(sys.argv[2])
key = "ms_per_update"
c = [json.loads(l) for l in open(f"{d}/cpp.jsonl")]
p = [json.loads(l) for l in open(f"{d}/py.jsonl")]
cv, pv = [r[key] for r in c], [r[key] for r in p]
ratios = [b / a for a, b in zip(cv, pv)]
r0 = c[0]
print(f"{rounds} alternated rounds; medians over rounds (min-max)\n")
print("| workload | metric | retort (C++) | PyTorch (Python) | Python / C++ |")
print("|---|---|---|---|---|")
what = (f"dmd2-update: {r0['config']}{' ' + ' '.join(r0['sets']) if r0['sets'] else ''}, batch {r0['batch']}, "
        f"{r0['critic_steps']} critic updates, {r0['student_steps']}-step student, {r0['threads']} thread(s), "
        f"median of {r0['updates']} updates after {r0['warmup']}")
fmt = lambda v: f"{statistics.median(v):.1f} ({min(v):.1f}-{max(v):.1f})"
print(f"| {what} | {key} | {fmt(cv)} | {fmt(pv)} | "
      f"**{statistics.median(pv) / statistics.median(cv):.2f}x** ({min(ratios):.2f}-{max(ratios):.2f}) |")
PYEOF
