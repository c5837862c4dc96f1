#!/bin/sh
# bench-step's whole-update workloads (bench/pipeline_step_bench.h): generate3d on the shipped config
# times the updates asked for, on either hash-grid path, and removes its scratch folder; dmd2-update
# times one DMD2 update of the shipped recipe; bad input is one config error (exit 2).
# Usage: bench_step_pipelines.sh RETORT_BIN (run from the repository root)
set -eu
BIN=$1
export TMPDIR=$(mktemp -d)
trap 'rm -rf "$TMPDIR"' EXIT
check() {  # WORKLOAD KEY=VALUE ...: the JSON line on stdin has those values and ms_per_update > 0
  /usr/bin/python3 -c '
import json, sys
j = json.loads(sys.stdin.readline())
want = dict(a.split("=", 1) for a in sys.argv[1:])
bad = {k: (v, j.get(k)) for k, v in want.items() if str(j.get(k)) != v}
assert not bad, bad
assert 0 < j["ms_min"] <= j["ms_per_update"] <= j["ms_max"], j
print("ok", j["workload"], *sorted(want))
' "$@"
}
$BIN bench-step --workload generate3d --steps 2 --warmup 1 2>/dev/null | check workload=generate3d updates=2 warmup=1 field=hash hash_path=kernel method=asd
$BIN bench-step --workload generate3d --steps 1 --warmup 0 --hash-path tensor --set 'generate3d.method="sds"' 2>/dev/null |
  check workload=generate3d hash_path=tensor method=sds
# --device wins over the config's runtime.device (a CUDA config benchmarked on the CPU).
$BIN bench-step --workload generate3d --steps 1 --warmup 0 --set 'field.kind="voxel"' --set 'runtime.device="cuda"' \
  --device cpu 2>/dev/null | tee "$TMPDIR/voxel.json" | check field=voxel
grep -q '"runtime":"device=cpu ' "$TMPDIR/voxel.json" || { echo "the JSON does not name the device: $(cat "$TMPDIR/voxel.json")"; exit 1; }
rm "$TMPDIR/voxel.json"
[ -z "$(ls "$TMPDIR")" ] || { echo "scratch folders left behind: $(ls "$TMPDIR")"; exit 1; }
$BIN bench-step --workload dmd2-update --steps 1 --warmup 0 --set distill.batch=4 2>/dev/null |
  check workload=dmd2-update method=dmd2 batch=4 critic_steps=5
expect_error() {  # MESSAGE-FRAGMENT ARGS...: exit 2 and the fragment on stderr, nothing on stdout
  frag=$1; shift
  set +e
  out=$($BIN bench-step "$@" 2>"$TMPDIR/err"); code=$?
  set -e
  [ "$code" = 2 ] && [ -z "$out" ] && grep -q -- "$frag" "$TMPDIR/err" ||
    { echo "bench-step $*: exit $code, stdout '$out', stderr: $(cat "$TMPDIR/err")"; exit 1; }
  echo "refused: $frag"
}
expect_error "the batch is the config's" --workload generate3d --batch 4
expect_error "--config /nonexistent.toml: no such file" --workload dmd2-update --config /nonexistent.toml
expect_error "times stage 2 after a GAN initialisation" --workload fvgen-update --set 'distill.method="dmd"'
expect_error "--dump /nonexistent/d.safetensors: no folder /nonexistent" --workload dmd2-update --dump /nonexistent/d.safetensors
expect_error "--weights belongs to the unet-train and ddim-sample workloads" --workload fvgen-update --weights "$TMPDIR/w.safetensors"
expect_error "--hash-path belongs to the generate3d workload" --workload mlp --hash-path tensor
expect_error "--config and --set belong to" --workload ddim-sample --set a=1
expect_error "--device cuda: mlp runs on the CPU" --workload mlp --device cuda
expect_error "--device: 'tpu' is not a device" --workload generate3d --device tpu
command -v nvidia-smi >/dev/null ||
  expect_error "--device: 'cuda' asked for, but this LibTorch sees no CUDA device" --workload unet-train --device cuda
echo "bench-step pipelines ok"
