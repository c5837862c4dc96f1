#!/bin/sh
# bench/python/fvgen.py is retort's FVGen stage-2 update, code path for code path: `bench-step
# --workload fvgen-update --dump` records the first stage-2 update of `retort distill-nvs` on
# configs/nvs-distill.toml (after stage 1's one GAN update; every module's weights before and after
# it, every draw of the run's Rng, the resolved config); the Python twin replays the draws from the
# same start and its student, fake score and discriminator head, and the gradients they are left
# with, must agree bit for bit. Two dumps, both on 4 clips rendered here:
#   plain: the shipped path at batch 1 from the teacher (the fake score is still the teacher, so the
#          generator's DMD gradient, and its step, are zero but for weight decay);
#   warm:  batch 2, started (distill.init) from a one-update run with a large critic rate, so the
#          fake score differs from the teacher: a non-zero softened-RKL gradient, backward
#          simulation (3 student steps), and gradient clipping of both generator and critic active
#          (clip 1 against norms of about 5 and 2).
# Both dump with --attention bmm (LibTorch's ops); a dump made with the fused attention is refused.
# Usage: fvgen_twin.sh RETORT_BIN SOURCE_DIR WORKDIR. Exit 77 (ctest: skipped) without torch in
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
WORK=$(cd "$WORK" && pwd)  # the dumps' configs name the data by this path
cd "$SRC"  # the config's teacher path is relative to the repository root
"$BIN" render-scenes --config configs/scenes.toml --out "$WORK/scenes" --no-progress \
  --set scenes.train=4 --set scenes.test=1 >/dev/null
DATA="data.train=\"$WORK/scenes/train.safetensors\""
rm -rf "$WORK/prior"
"$BIN" distill-nvs --config configs/nvs-distill.toml --out "$WORK/prior" --no-progress --set "$DATA" \
  --set 'data.preview=""' --set distill.batch=1 --set distill.gan_init_steps=1 --set distill.steps=1 \
  --set distill.lr=1e-3 --set distill.critic_lr=1e-3 --set preview.clips=1 --set runtime.threads=1 >/dev/null
"$BIN" bench-step --workload fvgen-update --set "$DATA" --set 'data.preview=""' --set distill.batch=1 \
  --steps 1 --warmup 0 --threads 1 --conv direct --attention bmm --dump "$WORK/plain.safetensors" >/dev/null
$PY "$SRC/bench/python/fvgen.py" --check "$WORK/plain.safetensors"
"$BIN" bench-step --workload fvgen-update --set "$DATA" --set 'data.preview=""' --set distill.batch=2 \
  --set "distill.init=\"$WORK/prior\"" --set distill.grad_clip=1 --set distill.critic_grad_clip=1 --steps 1 --warmup 0 --threads 1 --conv direct --attention bmm --dump "$WORK/warm.safetensors" >/dev/null
$PY "$SRC/bench/python/fvgen.py" --check "$WORK/warm.safetensors"
# A dump made with the fused attention is refused, not compared.
"$BIN" bench-step --workload fvgen-update --set "$DATA" --set 'data.preview=""' --set distill.batch=1 \
  --steps 1 --warmup 0 --threads 1 --conv direct --attention fused --dump "$WORK/fused.safetensors" >/dev/null
if $PY "$SRC/bench/python/fvgen.py" --check "$WORK/fused.safetensors" 2>"$WORK/fused.err"; then
  echo "fvgen.py compared a dump made with the fused attention"; exit 1
fi
grep -q "dump again with bench-step --attention bmm" "$WORK/fused.err" || { cat "$WORK/fused.err"; exit 1; }
echo "fvgen twin ok"
