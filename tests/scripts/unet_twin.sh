#!/bin/sh
# bench/python/unet.py is retort's UNet step, code path for code path: `bench-step --dump` records one
# seeded teacher training step (the world teacher at batch 3: input, output, loss, gradient norm,
# weights after AdamW) and one DDIM-with-CFG sampling (the Fashion-MNIST teacher, 3 images, 4 steps);
# the Python twin recomputes both from the dumped weights and must agree within 1e-5.
# A dump made with --conv winograd is refused with a message naming --conv direct.
# Usage: unet_twin.sh RETORT_BIN SOURCE_DIR WORKDIR. Exit 77 (ctest: skipped) without torch in
# /usr/bin/python3.
set -eu
BIN=$1
SRC=$2
WORK=$3
PY=/usr/bin/python3
if ! $PY -c 'import torch' 2>/dev/null; then
  echo "skipped: $PY has no torch"
  exit 77
fi
mkdir -p "$WORK"
"$BIN" bench-step --workload unet-train --conv direct --weights "$SRC/weights/world-teacher.safetensors" --batch 3 --steps 1 \
  --warmup 0 --dump "$WORK/train.safetensors" >/dev/null
$PY "$SRC/bench/python/unet.py" --check "$WORK/train.safetensors"
"$BIN" bench-step --workload ddim-sample --conv direct --weights "$SRC/weights/fmnist-teacher.safetensors" --batch 3 \
  --sampler-steps 4 --steps 1 --warmup 0 --dump "$WORK/sample.safetensors" >/dev/null
$PY "$SRC/bench/python/unet.py" --check "$WORK/sample.safetensors"
# A dump made with the Winograd convolutions (where this build has them) is refused, not compared.
if "$BIN" bench-step --workload ddim-sample --conv winograd --batch 1 --sampler-steps 1 --steps 1 --warmup 0 \
  --weights "$SRC/weights/fmnist-teacher.safetensors" --dump "$WORK/winograd.safetensors" >/dev/null 2>&1; then
  if $PY "$SRC/bench/python/unet.py" --check "$WORK/winograd.safetensors" 2>"$WORK/winograd.err"; then
    echo "FAIL: a Winograd dump passed the bit-for-bit check"; exit 1
  fi
  grep -q "dump again with bench-step --conv direct" "$WORK/winograd.err" || { cat "$WORK/winograd.err"; exit 1; }
fi
echo "unet twin ok"
