#!/bin/sh
# Distil your own PyTorch model, end to end: (a) train a small diffusion model in plain PyTorch and
# script it, (b) `retort distill` it into a few-step student, (c) export the student and sample it
# in Python, checking that Python's images equal retort's for the same noise, (d) score the
# student, its starting point (the teacher's network run as the same chain) and the teacher's own
# DDIM-50 samples with an 8 px evaluator (`retort eval`: FID, precision, recall, class accuracy);
# exit 1 unless the student's FID is below its starting point's. Prints each step's wall time.
# Usage: run_example.sh RETORT_BIN WORK_DIR [TEACHER_STEPS DISTILL_STEPS METHOD STUDENT_STEPS EVALUATOR_STEPS]
#   defaults 3000 400 dmd2 4 2000 (the README's run); CI runs 300 60 dmd2 1 300.
set -eu
retort=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
work=$2
teacher_steps=${3:-3000}
distill_steps=${4:-400}
method=${5:-dmd2}
student_steps=${6:-4}
evaluator_steps=${7:-2000}
here=$(cd "$(dirname "$0")" && pwd)
py=${PYTHON:-/usr/bin/python3}
mkdir -p "$work"
cd "$work"
timed() {  # timed LABEL COMMAND...: runs it, prints "== LABEL: N.N s"
  label=$1
  shift
  t0=$(date +%s%N)
  "$@"
  ms=$((($(date +%s%N) - t0) / 1000000))
  echo "== $label: $((ms / 1000)).$((ms % 1000 / 100)) s"
}
timed "(a) train the teacher in PyTorch" "$py" "$here/train_teacher.py" --steps "$teacher_steps" --out teacher.pt
cat > distill.toml <<TOML
teacher = "teacher.pt"          # the TorchScript archive from train_teacher.py
[data]                          # real images for the GAN head
source = "fashion-mnist"
resolution = 8
[distill]
method = "$method"              # retort config distill: every key
student_steps = $student_steps
steps = $distill_steps
batch = 32
lr = 1e-4
critic_lr = 1e-4
log_every = 10
checkpoint_every = 50
[runtime]
threads = 0
TOML
timed "(b) retort distill" "$retort" distill --config distill.toml --out distill --no-progress
timed "(c) retort export" "$retort" export --model distill/student.pt --out student.pt
"$retort" sample --model student.pt --n 100 --out retort-samples
timed "(c) sample in Python" "$py" "$here/sample_student.py" --model student.pt \
  --check retort-samples/samples.safetensors --out python-samples.pgm --save student.safetensors \
  --teacher teacher.pt --save-start start.safetensors --save-teacher teacher-ddim50.safetensors
timed "(d) the evaluator" "$retort" train-evaluator --config "$here/evaluator.toml" --out evaluator --no-progress \
  --set evaluator.steps="$evaluator_steps"
echo "| samples (1000, 8 px) | FID | precision | recall | class accuracy |"
echo "|---|---|---|---|---|"
for s in start student teacher-ddim50; do
  row=$("$retort" eval --config "$here/evaluator.toml" --evaluator evaluator/evaluator.safetensors --images "$s.safetensors" |
    tail -n 1 | cut -d'|' -f3-)
  echo "| $s |$row"
  echo "$row" | cut -d'|' -f1 | tr -d ' ' > "$s.fid"
done
if awk -v s="$(cat student.fid)" -v b="$(cat start.fid)" 'BEGIN { exit !(s < b) }'; then
  echo "the student's FID $(cat student.fid) is below its starting point's $(cat start.fid)"
else
  echo "the student's FID $(cat student.fid) is NOT below its starting point's $(cat start.fid)"
  exit 1
fi
