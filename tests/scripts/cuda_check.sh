#!/bin/sh
# The CUDA path, where a GPU and a CUDA LibTorch are (not part of ctest: CI has no GPU). Every
# training pipeline at tiny size with runtime.device = "cuda" against the same run on the CPU: the
# random draws are made on the CPU (core/rng.h), so the two differ only by arithmetic (cuDNN's TF32
# convolutions, other summation orders). Then data parallelism on CUDA tensors: 2 ranks against 1,
# by Gloo on one GPU, and by NCCL where the machine has two GPUs (NCCL refuses two ranks on one).
# Usage: cuda_check.sh RETORT_BIN SOURCE_DIR WORK_DIR   (env TORCHRUN, PYTHON: where those live;
# CHECK_DEVICE=cpu runs the script's own logic on a machine without a GPU)
set -eu
bin=$1
src=$(cd "$2" && pwd)
work=$3
torchrun=${TORCHRUN:-/usr/bin/torchrun}
py=${PYTHON:-/usr/bin/python3}
dev=${CHECK_DEVICE:-cuda}
here="$src/tests/scripts"
rm -rf "$work"
mkdir -p "$work"
cd "$work"
failed=""
# within LABEL A B TOL: prints the largest difference; a pair outside TOL is remembered (and fails
# the check at the end, after the other pairs have run).
within() {
  label=$1
  shift
  if out=$($py "$here/weights_diff.py" "$@"); then echo "$out" | tail -n 1
  else echo "$out" | tail -n 1; failed="$failed $label"; fi
}
# run NAME TOL FILE CMD...: CMD on the CPU (--out cpu-NAME) and on CUDA (--out cuda-NAME), then
# FILE of the two within TOL (absolute, plus TOL relative to each tensor's largest magnitude).
run() {
  name=$1 tol=$2 file=$3
  shift 3
  t0=$(date +%s.%N)
  "$bin" "$@" --out "cpu-$name" --no-progress > "cpu-$name.log" 2>&1 || { cat "cpu-$name.log"; exit 1; }
  t1=$(date +%s.%N)
  "$bin" "$@" --out "cuda-$name" --set "runtime.device=\"$dev\"" --no-progress > "cuda-$name.log" 2>&1 ||
    { cat "cuda-$name.log"; exit 1; }
  t2=$(date +%s.%N)
  grep -q "device.*$dev" "cuda-$name/config.resolved.toml" || { echo "$name: the run did not record device $dev"; exit 1; }
  printf '%-18s cpu %6.1f s  %s %6.1f s  ' "$name" "$(awk "BEGIN{print $t1 - $t0}")" "$dev" "$(awk "BEGIN{print $t2 - $t1}")"
  within "$name" "cpu-$name/$file" "cuda-$name/$file" "$tol"
}

echo "== 1. every pipeline on CUDA against the CPU"
cp "$here/tiny_teacher.toml" tiny.toml
printf '[train]\nsteps = 30\nbatch = 16\nwarmup = 5\ncheckpoint_every = 10\nlog_every = 10\nseed = 5\n' >> tiny.toml
run teacher 2e-3 teacher.safetensors train-teacher --config tiny.toml
cp "$here/tiny_evaluator.toml" evaluator.toml
run evaluator 2e-3 evaluator.safetensors train-evaluator --config evaluator.toml
mkdir -p one && cp cpu-teacher/teacher.safetensors one/  # the students' teacher (tiny_dmd2.toml)
cp "$here/tiny_dmd2.toml" student.toml
run dmd2 5e-3 student.safetensors distill --config student.toml
"$bin" render-scenes --config "$src/configs/scenes.toml" --out scenes --no-progress --set scenes.train=8 \
  --set scenes.test=2 --set scenes.resolution=10 --set scenes.frames=2 --set scenes.supersample=false > scenes.log 2>&1
cp "$here/tiny_nvs_teacher.toml" nvs.toml
run nvs-teacher 2e-3 nvs-teacher.safetensors train-nvs-teacher --config nvs.toml
mkdir -p nvs1 && cp cpu-nvs-teacher/nvs-teacher.safetensors nvs1/
cp "$here/tiny_fvgen.toml" fvgen.toml
run fvgen 5e-3 student.safetensors distill-nvs --config fvgen.toml
# lr 1e-3, not the shipped 1e-2: two runs' fields differ in proportion to lr (Adam's steps are
# about lr whatever the gradient's size, so a relative change in a gradient moves a weight by about
# lr times it). On the CPU, Winograd against direct convolutions left SDS's tables 1.6e-5 apart at
# lr 1e-2 and 1.6e-6 at 1e-3; on the H200 (cuDNN's TF32 convolutions) 0.0107 apart at 1e-2.
tiny3d="--set generate3d.lr=0.001 --set generate3d.steps=6 --set output.resolution=16 --set output.mesh_resolution=16 --set teacher=\"$src/weights/world-teacher.safetensors\""
for m in asd sds; do
  # shellcheck disable=SC2086
  run "generate3d-$m" 5e-3 field.safetensors generate3d --config "$src/configs/text3d.toml" --method $m $tiny3d
done
run generate2d 5e-3 particles.safetensors generate2d --config "$src/configs/text2d-fmnist.toml" --method asd \
  --set generate2d.steps=3 --set generate2d.particles=3 --set generate2d.batch=6 \
  --set "teacher=\"$src/weights/fmnist-teacher.safetensors\""

echo "== 2. data parallelism on CUDA tensors: 2 ranks against 1"
one_gpu=$dev
[ "$dev" = cuda ] && one_gpu=cuda:0  # both ranks on the first GPU
two() { "$torchrun" --standalone --nnodes 1 --nproc_per_node 2 --redirects 1 --tee 1 --no_python "$@"; }
"$bin" train-teacher --config tiny.toml --out dp-one --set "runtime.device=\"$dev\"" --no-progress > dp-one.log 2>&1
two "$bin" train-teacher --config tiny.toml --out dp-gloo --set "runtime.device=\"$one_gpu\"" --set 'runtime.backend="gloo"' \
  --no-progress > dp-gloo.log 2>&1 || { cat dp-gloo.log; exit 1; }
grep -q "^# run at world size 2 (gloo" dp-gloo/config.resolved.toml || { echo "not a 2-rank Gloo run"; exit 1; }
printf 'gloo, 2 ranks on one GPU  '
within gloo dp-one/teacher.safetensors dp-gloo/teacher.safetensors 1e-3
gpus=$(nvidia-smi -L 2>/dev/null | wc -l)
if [ "$gpus" -ge 2 ]; then
  two "$bin" train-teacher --config tiny.toml --out dp-nccl --no-progress --set 'runtime.device="cuda"' > dp-nccl.log 2>&1 ||
    { cat dp-nccl.log; exit 1; }
  grep -q "^# run at world size 2 (nccl" dp-nccl/config.resolved.toml || { echo "not a 2-rank NCCL run"; exit 1; }
  printf 'nccl, 2 ranks on 2 GPUs  '
  within nccl dp-one/teacher.safetensors dp-nccl/teacher.safetensors 1e-3
else
  echo "nccl: skipped, $gpus GPU (NCCL needs a GPU per rank)"
fi
[ -z "$failed" ] || { echo "cuda check FAILED, outside the tolerance:$failed"; exit 1; }
echo "cuda check ok"
