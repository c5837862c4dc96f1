#!/bin/bash
# A student's quality along its training: trains the distill config to each step count in turn
# (raising [distill] steps continues the same run, so this is one run scored at several points),
# samples N images at every stop and scores them with `retort eval`. Prints a markdown table and
# keeps it in OUT/curve.md. With [distill] ema the student is the moving average; the trained
# weights (student-raw.safetensors) are scored too, into OUT/curve-raw.md.
#
#   bench/student_curve.sh CONFIG OUT EVALUATOR N STEP [STEP ...]
#   bench/student_curve.sh configs/fmnist-dmd2-long.toml out/dmd2-long \
#       weights/fmnist-evaluator.safetensors 2000 250 500 1000 2000
#
# RETORT names the binary (default build/retort). Scores already in OUT/curve.md are kept.
set -euo pipefail
if [ $# -lt 5 ]; then
  sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
fi
config=$1 out=$2 evaluator=$3 n=$4
shift 4
retort=${RETORT:-build/retort}
for f in "$config" "$evaluator" "$retort"; do
  [ -e "$f" ] || { echo "student_curve: $f: no such file" >&2; exit 2; }
done
grep -q '^\[distill\]' "$config" || { echo "student_curve: $config: no [distill] table" >&2; exit 2; }
mkdir -p "$out"
table=$out/curve.md raw_table=$out/curve-raw.md
for t in "$table" "$raw_table"; do
  [ -f "$t" ] || printf '| steps | n | FID | precision | recall | class accuracy |\n|---:|---:|---:|---:|---:|---:|\n' > "$t"
done
# Samples N images of MODEL with the fixed seed and appends its eval row, led by the step count, to TABLE.
score() {
  local model=$1 samples=$2 table=$3
  "$retort" sample --model "$model" --out "$samples" --n "$n" --seed 0 --threads 1
  row=$("$retort" eval --config "$out/config-at-step.toml" --evaluator "$evaluator" \
          --images "$samples/samples.safetensors" --k 3 | tail -n 1)
  # eval's row is "| n | FID | precision | recall | class accuracy |": put the step count first.
  echo "| $steps $row" >> "$table"
}
for steps in "$@"; do
  [[ "$steps" =~ ^[1-9][0-9]*$ ]] || { echo "student_curve: step count '$steps' is not a positive integer" >&2; exit 2; }
  grep -q "^| $steps |" "$table" && continue
  # The config with [distill] steps = $steps (added when the table has none).
  awk -v s="$steps" '
    /^\[/ { if (in_d && !done) { print "steps = " s; done = 1 } in_d = ($0 == "[distill]" || $0 ~ /^\[distill\][ \t]*(#.*)?$/) }
    in_d && /^steps[ \t]*=/ { if (!done) print "steps = " s; done = 1; next }
    { print }
    END { if (in_d && !done) print "steps = " s }' "$config" > "$out/config-at-step.toml"
  "$retort" distill --config "$out/config-at-step.toml" --out "$out/run" --no-progress
  if [ -f "$out/run/student-raw.safetensors" ] && ! grep -q "^| $steps |" "$raw_table"; then
    score "$out/run/student-raw.safetensors" "$out/samples-raw-$steps" "$raw_table"
  fi
  score "$out/run/student.safetensors" "$out/samples-$steps" "$table"
done
[ "$(wc -l < "$raw_table")" -gt 2 ] && { echo "trained weights (student-raw.safetensors):"; cat "$raw_table"; echo; }
cat "$table"
# OUT/report.html: the curve tables (FID along training) beside the run's own report
"$retort" report "$out" "$out/run" > /dev/null
