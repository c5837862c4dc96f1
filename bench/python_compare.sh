#!/usr/bin/env bash
# retort's workloads against the same work in Python PyTorch (Debian's python3-torch, the same
# LibTorch 1.13 underneath), twin for twin:
#   unet-train   bench/python/unet.py: one teacher training step (world teacher, batch 64, 32 px), ms per step
#   ddim-sample  bench/python/unet.py: DDIM-50 with CFG 3 (Fashion-MNIST teacher, 64 images), ms per image
#   dmd2-update  bench/python/dmd2.py: one DMD2 update of configs/fmnist-dmd2-noreg.toml from the
#                teacher (batch 32, 5 critic updates, backward simulation), ms per update
#   fvgen-update bench/python/fvgen.py: one FVGen stage-2 update of configs/nvs-distill.toml (4 clips
#                x 8 frames, softened reverse KL with the discriminator), ms per update; the config
#                reads runs/scenes/train.safetensors (retort render-scenes; --set data.train=... for another)
#   generate3d   bench/python/generate3d.py: one generate3d iteration of configs/text3d.toml (ASD,
#                hash grid; the twin's encoding is tensor ops, retort's its CPU kernel), ms per update
# Each twin's --check shows it computes the same step (tests/scripts/*_twin.sh), with retort's
# convolutions and attention set to LibTorch's ops (--conv direct --attention bmm); timed here,
# retort runs its defaults (Winograd where built with oneDNN, the fused attention) unless the flags
# say otherwise.
# For each round every workload runs in C++ and then in Python, so machine noise hits both alike;
# prints a markdown table of medians over rounds, their min-max, and the ratio Python / C++ (of the
# medians; min-max over the rounds' ratios).
# Usage: bench/python_compare.sh [ROUNDS] [WORKLOADS] [flags for both programs, e.g. --threads 2]
#   WORKLOADS: comma-separated, default unet-train,ddim-sample,dmd2-update
# Python's allocator as retort's (core/runtime.cpp: no mmap, no trimming): run with
#   MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=17179869184 bench/python_compare.sh ...
# (glibc reads them at start; retort sets the same with mallopt, so it is unaffected).
# Exit 2 when /usr/bin/python3 has no torch.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-5}
shift || true
WORKLOADS=${1:-unet-train,ddim-sample,dmd2-update}
shift || true
BIN=${RETORT_BIN:-./build/retort}
PY=/usr/bin/python3
if ! $PY -c 'import torch' 2>/dev/null; then
  echo "python_compare: skipped: $PY has no torch (Debian: apt-get install python3-torch)" >&2
  exit 2
fi
[ -x "$BIN" ] || { echo "python_compare: $BIN not found; build first (scripts/build.sh)" >&2; exit 2; }
twin() {
  case $1 in
    unet-train|ddim-sample) echo bench/python/unet.py ;;
    dmd2-update) echo bench/python/dmd2.py ;;
    fvgen-update) echo bench/python/fvgen.py ;;
    generate3d) echo bench/python/generate3d.py ;;
    *) echo "python_compare: no Python twin of '$1' (unet-train, ddim-sample, dmd2-update, fvgen-update, generate3d)" >&2
       exit 2 ;;
  esac
}
IFS=, read -r -a workloads <<<"$WORKLOADS"
# retort-only flags (--conv, --attention, --hash-path) are not passed to the twins.
py_flags=()
skip=0
for f in "$@"; do
  if [ $skip = 1 ]; then skip=0; continue; fi
  case $f in --conv|--attention|--hash-path) skip=1 ;; --conv=*|--attention=*|--hash-path=*) ;; *) py_flags+=("$f") ;; esac
done
for w in "${workloads[@]}"; do twin "$w" >/dev/null; done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export OPENBLAS_NUM_THREADS=1
for i in $(seq "$ROUNDS"); do
  for w in "${workloads[@]}"; do
    $BIN bench-step --workload "$w" "$@" >>"$tmp/$w.cpp.jsonl"
    $PY "$(twin "$w")" --workload "$w" "${py_flags[@]}" >>"$tmp/$w.py.jsonl"
  done
  echo "round $i of $ROUNDS done (load $(cut -d' ' -f1 /proc/loadavg))" >&2
done
$PY - "$tmp" "$ROUNDS" "${workloads[@]}" <<'PYEOF'
import json, statistics, sys
d, rounds, workloads = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
metric = {"unet-train": "ms_per_step", "ddim-sample": "ms_per_image", "dmd2-update": "ms_per_update",
          "fvgen-update": "ms_per_update", "generate3d": "ms_per_update"}
print(f"{rounds} alternated rounds; medians over rounds (min-max)\n")
print("| workload | metric | retort (C++) | PyTorch (Python) | Python / C++ |")
print("|---|---|---|---|---|")
for w in workloads:
    key = metric[w]
    c = [json.loads(l) for l in open(f"{d}/{w}.cpp.jsonl")]
    p = [json.loads(l) for l in open(f"{d}/{w}.py.jsonl")]
    cv, pv = [r[key] for r in c], [r[key] for r in p]
    ratios = [b / a for a, b in zip(cv, pv)]
    r0 = c[0]
    conv = r0["runtime"].split("conv=")[-1] if "conv=" in r0.get("runtime", "") else "direct"
    if w == "generate3d":
        what = (f"{w}: {r0['config']}{' ' + ' '.join(r0['sets']) if r0['sets'] else ''}, {r0['method']}, "
                f"{r0['field']} field ({r0['hash_path']} path), {r0['resolution']} px, {r0['threads']} thread(s), "
                f"median of {r0['updates']} updates after {r0['warmup']}")
    elif w in ("dmd2-update", "fvgen-update"):
        what = (f"{w}: {r0['config']}{' ' + ' '.join(r0['sets']) if r0['sets'] else ''}, batch {r0['batch']}, "
                f"{r0['critic_steps']} critic updates, {r0['student_steps']}-step student, {r0['threads']} thread(s), "
                f"median of {r0['updates']} updates after {r0['warmup']}")
    else:
        what = (f"{w}: batch {r0['batch']}, {r0['resolution']} px, {r0['params']} params, {r0['threads']} thread(s)"
                + (f", {r0['sampler_steps']} DDIM steps, cfg {r0['cfg']}" if w == "ddim-sample" else ""))
    fmt = lambda v: f"{statistics.median(v):.2f} ({min(v):.2f}-{max(v):.2f})"
    what += f", conv {conv}"
    print(f"| {what} | {key} | {fmt(cv)} | {fmt(pv)} | "
          f"**{statistics.median(pv) / statistics.median(cv):.2f}x** ({min(ratios):.2f}-{max(ratios):.2f}) |")
PYEOF
