#!/bin/sh
# bench/python/generate3d.py is retort's generate3d iteration, code path for code path: `bench-step
# --workload generate3d --dump` records the first iteration of `retort generate3d` on
# configs/text3d.toml (ASD, phi = embedding, hash grid, shaded 32 px renders, 64 samples per ray:
# the field's and phi's weights before and after it, the gradients it leaves, every draw of the run's
# Rng, the resolved config); the Python twin replays the draws from the same start.
#  * --hash-path tensor (the vectorised encoding the twin also uses): bit for bit (--tol 0);
#  * the default kernel path (hand-written, its own summation order in the backward): within 1e-6
#    (seen: weights after <= 6.7e-7 absolute, Adam's first step amplifying gradient differences of
#    <= 1.2e-8 of the largest component near |g| ~ eps; phi bit for bit);
#  * a copy of the dump with one start weight moved by 1e-3 must fail the check (exit 1).
# Usage: generate3d_twin.sh RETORT_BIN SOURCE_DIR WORKDIR. Exit 77 (ctest: skipped) without torch in
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
TWIN="$SRC/bench/python/generate3d.py"
# The teacher's 3x3 convolutions as PyTorch runs them (LibTorch's direct path, not oneDNN's Winograd
# kernels); one thread, as the twin's --check.
for path in tensor kernel; do
  OPENBLAS_NUM_THREADS=1 "$BIN" bench-step --workload generate3d --steps 1 --warmup 0 --threads 1 --conv direct \
    --hash-path $path --dump "$WORK/g3-$path.safetensors" >/dev/null
done
$PY "$TWIN" --check "$WORK/g3-tensor.safetensors" --tol 0
$PY "$TWIN" --check "$WORK/g3-kernel.safetensors" --tol 1e-6
# The check must be able to fail: one start weight of the field's MLP moved by 1e-3.
$PY - "$WORK/g3-tensor.safetensors" "$WORK/g3-moved.safetensors" <<'EOF'
import json, struct, sys
src, dst = sys.argv[1], sys.argv[2]
b = bytearray(open(src, "rb").read())
n = struct.unpack("<Q", b[:8])[0]
e = json.loads(b[8:8 + n])["start.generator.field.mlp.2.bias"]
at = 8 + n + e["data_offsets"][0]
struct.pack_into("<f", b, at, struct.unpack_from("<f", b, at)[0] + 1e-3)
open(dst, "wb").write(b)
EOF
rc=0
$PY "$TWIN" --check "$WORK/g3-moved.safetensors" --tol 1e-6 >"$WORK/moved.json" || rc=$?
if [ $rc -ne 1 ] || ! grep -q '"ok": false' "$WORK/moved.json"; then
  echo "FAIL: --check of a dump with a moved start weight: exit $rc (want 1, ok false)"
  cat "$WORK/moved.json"
  exit 1
fi
echo "moved start weight: --check exits 1, as it should: $(cut -c1-200 "$WORK/moved.json")"
echo "generate3d twin ok"
