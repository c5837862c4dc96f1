#!/bin/sh
# A teacher run killed with SIGKILL and then rerun reaches the same weights, byte for byte, as an
# uninterrupted run with the same seed (issue 4: "resuming after an interruption (kill -9
# included)"). Usage: kill9_resume.sh RETORT_BIN WORK_DIR
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
steps = 300
batch = 16
checkpoint_every = 10
log_every = 10
seed = 3
TOML

"$bin" train-teacher --config tiny.toml --out whole --no-progress > whole.log 2>&1

"$bin" train-teacher --config tiny.toml --out killed --no-progress > killed.log 2>&1 &
pid=$!
i=0
# Kill it mid-run, some way past its first checkpoints (metrics rows and checkpoints every 10 steps).
logged() { tail -n 1 killed/metrics.csv 2>/dev/null | cut -d, -f1 | grep -E '^[0-9]+$' || echo 0; }
while [ "$(logged)" -lt 100 ]; do
  i=$((i + 1))
  if [ $i -gt 6000 ]; then echo "no checkpoint after 60 s"; kill -9 $pid; exit 1; fi
  sleep 0.01
done
kill -9 $pid
wait $pid 2>/dev/null || true
if [ -e killed/teacher.safetensors ]; then
  echo "the run finished before it was killed: raise [train] steps"; exit 1
fi
echo "killed after step $(logged) of 300"

"$bin" train-teacher --config tiny.toml --out killed --no-progress > resumed.log 2>&1
cmp whole/teacher.safetensors killed/teacher.safetensors
echo "resumed weights identical to the uninterrupted run"
