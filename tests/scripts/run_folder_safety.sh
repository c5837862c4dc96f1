#!/bin/sh
# What protects a run folder (issue 24), on a tiny teacher:
#  1. a second process on the same --out is refused while the first runs (the .lock flock), with a
#     clear message naming the holder; the first killed with SIGKILL, a rerun takes the folder over
#     and finishes;
#  2. a full disk (a file-size limit: `ulimit -f`): the checkpoint write fails with one line naming
#     the file, no temporary is left, the previous checkpoint stays loadable, and a rerun with room
#     ends byte-identical to an uninterrupted run;
#  3. a weights file holding a NaN is refused on load, naming the tensor.
# Usage: run_folder_safety.sh RETORT_BIN WORK_DIR
set -eu
bin=$1
work=$2
here=$(cd "$(dirname "$0")" && pwd)
rm -rf "$work"
mkdir -p "$work"
cd "$work"
cp "$here/tiny_teacher.toml" tiny.toml
cat >> tiny.toml <<'TOML'
[train]
steps = 120
batch = 8
checkpoint_every = 10
log_every = 10
seed = 4
TOML
"$bin" train-teacher --config tiny.toml --out whole --no-progress > whole.log 2>&1

echo "== 1. two processes on one folder"
"$bin" train-teacher --config tiny.toml --out busy --set train.steps=100000 --no-progress > first.log 2>&1 &
first=$!
i=0
until [ -s busy/metrics.csv ] && [ "$(wc -l < busy/metrics.csv)" -gt 2 ]; do
  i=$((i + 1)); if [ $i -gt 600 ]; then echo "no metrics after 60 s"; cat first.log; kill -9 $first; exit 1; fi
  sleep 0.1
done
set +e
"$bin" train-teacher --config tiny.toml --out busy --set train.steps=100000 --no-progress > second.log 2>&1
rc=$?
set -e
cat second.log
[ $rc = 3 ] || { echo "the second process: exit $rc, expected 3"; kill -9 $first; exit 1; }
grep -q "busy: in use by another retort run (pid $first)" second.log || { kill -9 $first; exit 1; }
kill -9 $first
wait $first 2>/dev/null || true
"$bin" train-teacher --config tiny.toml --out busy --set train.steps=100000 --stop-after 5 --no-progress > third.log 2>&1 ||
  { cat third.log; exit 1; }
grep -q "taking over from pid $first, which did not exit cleanly" third.log || { cat third.log; exit 1; }
echo "the folder of the killed run was taken over"

echo "== 2. the disk fills up at a checkpoint"
"$bin" train-teacher --config tiny.toml --out full --stop-after 50 --no-progress > full1.log 2>&1
cp full/checkpoint.pt kept.pt
size_kb=$(( $(wc -c < full/checkpoint.pt) / 1024 ))
set +e
# dash and bash count ulimit -f in 512- and 1024-byte blocks; half the checkpoint's size in either
( ulimit -f $((size_kb / 2)); "$bin" train-teacher --config tiny.toml --out full --no-progress ) > full2.log 2>&1
rc=$?
set -e
cat full2.log
if grep -q "taking over" full2.log; then echo "a run that ended normally was reported as killed"; exit 1; fi
[ $rc = 3 ] || { echo "a failed checkpoint write: exit $rc, expected 3"; exit 1; }
grep -q "full/checkpoint.pt: cannot write: .*File too large" full2.log || exit 1
[ ! -e full/checkpoint.pt.tmp ] || { echo "a half-written checkpoint.pt.tmp was left"; exit 1; }
cmp full/checkpoint.pt kept.pt || { echo "the previous checkpoint changed"; exit 1; }
"$bin" train-teacher --config tiny.toml --out full --no-progress > full3.log 2>&1 || { cat full3.log; exit 1; }
cmp whole/teacher.safetensors full/teacher.safetensors
echo "resumed after the full disk to the uninterrupted weights"

echo "== 3. a weights file with a NaN"
/usr/bin/python3 - whole/teacher.safetensors nan.safetensors <<'PY'
import json, struct, sys
data = bytearray(open(sys.argv[1], "rb").read())
n = struct.unpack("<Q", data[:8])[0]
header = json.loads(data[8:8 + n])
name = sorted(k for k, v in header.items() if k != "__metadata__" and v["dtype"] == "F32")[0]
start = 8 + n + header[name]["data_offsets"][0]
data[start:start + 4] = struct.pack("<f", float("nan"))
open(sys.argv[2], "wb").write(data)
print("NaN written into", name)
PY
set +e
"$bin" sample --model nan.safetensors --out nan-samples --steps 2 --n 2 > nan.log 2>&1
rc=$?
set -e
cat nan.log
[ $rc = 3 ] || { echo "NaN weights: exit $rc, expected 3"; exit 1; }
grep -q "nan.safetensors: tensor .* holds a NaN or infinite value" nan.log || exit 1
echo "run folder safety ok"
