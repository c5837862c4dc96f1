#!/usr/bin/env bash
# What a TorchScript teacher costs against retort's own UNet of the same architecture (README
# "Distil your own PyTorch model"): the shipped Fashion-MNIST teacher is exported
# (`retort export`, a bit-identical TorchScript UNet) and both are timed side by side, alternating,
# ROUNDS times; each row is the median.
#   teacher call   ms per network evaluation: `retort sample` DDIM-50 on a batch of N images
#                  (one call per step), from the command's own ms per image
#   distill update ms per DMD2 update (5 critic updates + 1 student update, batch 32, 16 px), from
#                  the seconds column of stage2/metrics.csv (start-up not counted)
# Usage: bench/torchscript_overhead.sh [ROUNDS N DMD2_UPDATES THREADS]   (default 3 100 6 1)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$PWD/build/retort
rounds=${1:-3} n=${2:-100} updates=${3:-6} threads=${4:-1}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$bin" export --model weights/fmnist-teacher.safetensors --out "$tmp/teacher.pt" > /dev/null
native=$PWD/weights/fmnist-teacher.safetensors scripted=$tmp/teacher.pt
call_ms() {  # call_ms MODEL: ms per teacher call (the command's ms per image x images / 50 calls)
  "$bin" sample --model "$1" --steps 50 --n "$n" --threads "$threads" --out "$tmp/sample" |
    sed -E 's|.* = ([0-9.]+) ms/image.*|\1|' | awk -v n="$n" '{ printf "%.1f", $1 * n / 50 }'
}
update_ms() {  # update_ms MODEL: ms per DMD2 update
  rm -rf "$tmp/distill"
  "$bin" distill --config configs/fmnist-dmd2-long.toml --out "$tmp/distill" --no-progress \
    --set "teacher=\"$1\"" --set distill.steps="$updates" --set distill.log_every=1 \
    --set distill.checkpoint_every=1000 --set distill.ema=0 --set runtime.threads="$threads" > "$tmp/distill.log" 2>&1 ||
    { cat "$tmp/distill.log"; exit 1; }
  awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == "seconds") c = i }
           NR == 2 { first = $c; s = $1 } END { printf "%.0f", ($c - first) * 1000 / ($1 - s) }' \
    "$tmp/distill/stage2/metrics.csv"
}
median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
cn="" cs="" un="" us=""
for r in $(seq "$rounds"); do
  cn="$cn $(call_ms "$native")" cs="$cs $(call_ms "$scripted")"
  un="$un $(update_ms "$native")" us="$us $(update_ms "$scripted")"
  echo "round $r: teacher call native$cn | torchscript$cs; distill update native$un | torchscript$us" >&2
done
printf '| per | native UNet (ms) | TorchScript (ms) | TorchScript / native |\n|---|---|---|---|\n'
for row in "teacher call (batch $n)|$cn|$cs" "DMD2 update (batch 32)|$un|$us"; do
  IFS='|' read -r name a b <<< "$row"
  ma=$(echo "$a" | median) mb=$(echo "$b" | median)
  printf '| %s | %s | %s | %.2f |\n' "$name" "$ma" "$mb" "$(echo "$mb $ma" | awk '{ print $1 / $2 }')"
done
echo "(medians of $rounds rounds, $threads thread(s), $(nproc) cores; load $(cut -d' ' -f1-3 /proc/loadavg))"
