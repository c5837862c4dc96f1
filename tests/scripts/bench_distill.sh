#!/bin/sh
# retort bench-distill on a tiny 8 px teacher: a student file ([eval] students) is scored beside the
# teacher without training, a [[run]] is trained and named with its updates, and a missing student
# file is a config error (exit 2) before anything is written.
# Usage: bench_distill.sh RETORT_BIN SOURCE_DIR WORK_DIR
set -eu
bin=$1
src=$2
work=$3
rm -rf "$work"
mkdir -p "$work"
cd "$work"
cp "$src/tests/scripts/tiny_teacher.toml" teacher.toml
printf '[train]\nsteps = 30\nbatch = 16\nlog_every = 10\n' >> teacher.toml
cp "$src/tests/scripts/tiny_evaluator.toml" evaluator.toml
cat > bench.toml <<'TOML'
teacher = "teacher/teacher.safetensors"
evaluator = "evaluator/evaluator.safetensors"
[data]
source = "fashion-mnist"
resolution = 8
[eval]
n = 40
teacher_steps = [4]
students = ["student/student.safetensors"]
[distill]
method = "dmd"
student_steps = 2
steps = 3
batch = 8
log_every = 1
checkpoint_every = 1
[runtime]
threads = 1
[[run]]
name = "dmd-2step"
TOML
cat > student.toml <<'TOML'
teacher = "teacher/teacher.safetensors"
[data]
source = "fashion-mnist"
resolution = 8
[distill]
method = "dmd"
student_steps = 1
steps = 2
batch = 8
log_every = 1
checkpoint_every = 1
[runtime]
threads = 1
TOML
"$bin" train-teacher --config teacher.toml --out teacher --no-progress > teacher.log 2>&1
"$bin" train-evaluator --config evaluator.toml --out evaluator --no-progress > evaluator.log 2>&1
# the "shipped" student: a 1-step DMD student distilled for 2 updates
"$bin" distill --config student.toml --out student --no-progress > student.log 2>&1 ||
  { cat student.log; exit 1; }
"$bin" bench-distill --config bench.toml --out bench --no-progress > table.md 2> bench.log || { cat bench.log; exit 1; }
cat table.md
grep -q '^| student/student.safetensors (file) | 1 |' table.md || { echo "no row for the student file"; exit 1; }
grep -q '^| dmd-2step (trained here, 3 updates) | 2 |' table.md || { echo "no row for the trained run"; exit 1; }
[ "$(grep -c '^| ' table.md)" = 4 ] || { echo "expected header + 3 rows"; exit 1; }
set +e
"$bin" bench-distill --config bench.toml --out bad --set 'eval.students=["none.safetensors"]' > bad.log 2>&1
rc=$?
set -e
[ $rc = 2 ] || { echo "missing student file: exit $rc"; cat bad.log; exit 1; }
grep -q 'eval.students: none.safetensors: no such student file' bad.log || { cat bad.log; exit 1; }
[ ! -e bad ] || { echo "a refused config wrote bad/"; exit 1; }
echo "bench-distill scored the student file and the trained run"
