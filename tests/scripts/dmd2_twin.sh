#!/bin/sh
# bench/python/dmd2.py is retort's DMD2 update, code path for code path: `bench-step --workload
# dmd2-update --dump` records the first update of `retort distill` on configs/fmnist-dmd2-noreg.toml
# at batch 2 (every module's weights before and after it, every draw of the run's Rng, the resolved
# config); the Python twin replays the draws from the same start and its student, average, fake
# score and head must agree within 1e-5.
# Usage: dmd2_twin.sh RETORT_BIN SOURCE_DIR WORKDIR. Exit 77 (ctest: skipped) without torch in
# /usr/bin/python3.
set -eu
BIN=$1
SRC=$2
WORK=$3
PY=/usr/bin/python3
if ! $PY -c 'import torch, tomllib' 2>/dev/null; then
  echo "skipped: $PY has no torch (or is older than Python 3.11: no tomllib)"
  exit 77
fi
mkdir -p "$WORK"
cd "$SRC"  # the config's teacher path is relative to the repository root
"$BIN" bench-step --workload dmd2-update --conv direct --set distill.batch=2 --steps 1 --warmup 0 \
  --dump "$WORK/dmd2.safetensors" >/dev/null
$PY "$SRC/bench/python/dmd2.py" --check "$WORK/dmd2.safetensors"
echo "dmd2 twin ok"
