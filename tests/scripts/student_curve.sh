#!/bin/sh
# bench/student_curve.sh scores one distillation run at several step counts: a tiny teacher and
# evaluator at 8 px, a DMD student scored at 2 and 4 steps, then the curve extended to 6 steps
# continues the same run (stage 2 logs steps 5 and 6 only once) and keeps the rows it had.
# Usage: student_curve.sh RETORT_BIN SOURCE_DIR WORK_DIR
set -eu
bin=$1
src=$2
work=$3
rm -rf "$work"
mkdir -p "$work"
cd "$work"
cp "$src/tests/scripts/tiny_teacher.toml" teacher.toml
cat >> teacher.toml <<'TOML'
[train]
steps = 30
batch = 16
log_every = 10
TOML
cp "$src/tests/scripts/tiny_evaluator.toml" evaluator.toml
cat > distill.toml <<'TOML'
teacher = "teacher/teacher.safetensors"
[data]
source = "fashion-mnist"
resolution = 8
[distill]
method = "dmd"
student_steps = 2
steps = 1000
batch = 8
log_every = 1
checkpoint_every = 1
[runtime]
threads = 1
TOML
"$bin" train-teacher --config teacher.toml --out teacher --no-progress > teacher.log 2>&1
"$bin" train-evaluator --config evaluator.toml --out evaluator --no-progress > evaluator.log 2>&1
RETORT=$bin bash "$src/bench/student_curve.sh" distill.toml curve evaluator/evaluator.safetensors 100 2 4 > first.log 2>&1 ||
  { cat first.log; exit 1; }
RETORT=$bin bash "$src/bench/student_curve.sh" distill.toml curve evaluator/evaluator.safetensors 100 2 4 6 > second.log 2>&1 ||
  { cat second.log; exit 1; }
cat curve/curve.md
rows=$(grep -c '^| [0-9]' curve/curve.md)
[ "$rows" = 3 ] || { echo "expected 3 rows, got $rows"; exit 1; }
steps=$(cut -d, -f1 curve/run/stage2/metrics.csv | grep -E '^[0-9]+$' | tr '\n' ' ')
[ "$steps" = "1 2 3 4 5 6 " ] || { echo "stage 2 logged steps: $steps"; exit 1; }
# The curve's report draws FID along training: one point per scored step.
grep -q '<title>curve.md: FID</title>' curve/report.html || { echo "curve/report.html draws no FID curve"; exit 1; }
if RETORT=$bin bash "$src/bench/student_curve.sh" distill.toml curve evaluator/evaluator.safetensors 100 x > bad.log 2>&1; then
  echo "a bad step count was accepted"; exit 1
fi
grep -q "'x' is not a positive integer" bad.log || { cat bad.log; exit 1; }
echo "curve continued one run"
