#!/bin/sh
# retort generate2d and bench-2d at tiny size on the shipped Fashion-MNIST teacher and evaluator
# (issue 22 part 2): generate2d writes its particles, grid, loss curve and checkpoint; bench-2d's
# table has a row for the real images, the teacher and every [[run]] (SDS, VSD, ASD Eq. 6, ASD Eq. 5
# with real data); ASD Eq. 5 on the world teacher's text prompts (no [data]) is refused (exit 2)
# before anything is written.
# Usage: text2d_cli.sh RETORT_BIN SOURCE_DIR WORK_DIR
set -eu
bin=$1
src=$2
work=$3
rm -rf "$work"
mkdir -p "$work"
cd "$work"
tiny="--no-progress --set generate2d.steps=3 --set generate2d.particles=3 --set generate2d.batch=6 --set generate2d.log_every=1"
"$bin" generate2d --config "$src/configs/text2d-fmnist.toml" --out gen --method asd --set generate2d.asd_real=true \
  --set "teacher=\"$src/weights/fmnist-teacher.safetensors\"" $tiny > gen.log 2>&1 || { cat gen.log; exit 1; }
for f in particles.safetensors particles.png loss.png metrics.csv checkpoint.pt config.resolved.toml; do
  [ -s "gen/$f" ] || { echo "generate2d wrote no $f"; exit 1; }
done
grep -q 'asd (Eq. 5, real data) on 2 x 3 particles: 3 iterations' gen.log || { cat gen.log; exit 1; }
# kill -9 mid-run, rerun: the particles of the uninterrupted run, byte for byte (t_max annealed
# linearly over the run, real-data draws of Eq. 5 from the checkpointed stream).
long="--no-progress --method asd --set generate2d.asd_real=true --set generate2d.steps=100 --set generate2d.particles=2
  --set generate2d.batch=4 --set generate2d.log_every=1 --set generate2d.checkpoint_every=5
  --set teacher=\"$src/weights/fmnist-teacher.safetensors\""
"$bin" generate2d --config "$src/configs/text2d-fmnist.toml" --out whole $long > whole.log 2>&1 || { cat whole.log; exit 1; }
"$bin" generate2d --config "$src/configs/text2d-fmnist.toml" --out killed $long > killed.log 2>&1 &
pid=$!
logged() { tail -n 1 killed/metrics.csv 2>/dev/null | cut -d, -f1 | grep -E '^[0-9]+$' || echo 0; }
i=0
while [ "$(logged)" -lt 20 ]; do
  i=$((i + 1))
  if [ $i -gt 6000 ]; then echo "no checkpoint after 60 s"; kill -9 $pid; exit 1; fi
  sleep 0.01
done
kill -9 $pid
wait $pid 2>/dev/null || true
[ ! -e killed/particles.safetensors ] || { echo "the run finished before it was killed: raise its steps"; exit 1; }
echo "killed after step $(logged) of 100"
"$bin" generate2d --config "$src/configs/text2d-fmnist.toml" --out killed $long > resumed.log 2>&1 || { cat resumed.log; exit 1; }
cmp whole/particles.safetensors killed/particles.safetensors || { echo "resumed particles differ"; exit 1; }
# The world teacher takes text prompts; with no real images, Eq. 5 is refused.
set +e
"$bin" generate2d --config "$src/configs/text2d-world.toml" --out world-eq5 --set generate2d.asd_real=true $tiny > eq5.log 2>&1
rc=$?
set -e
[ $rc = 2 ] || { echo "Eq. 5 without real data: exit $rc"; cat eq5.log; exit 1; }
grep -q 'generate2d.asd_real: .*\[data\]' eq5.log || { cat eq5.log; exit 1; }
[ ! -e world-eq5 ] || { echo "a refused config wrote world-eq5/"; exit 1; }
cat > bench.toml <<TOML
teacher = "$src/weights/fmnist-teacher.safetensors"
evaluator = "$src/weights/fmnist-evaluator.safetensors"
prompts = ["sneaker", "trouser"]
[generate2d]
particles = 5
batch = 10
steps = 2
log_every = 1
checkpoint_every = 1
[data]
source = "fashion-mnist"
resolution = 16
[eval]
teacher_steps = 3
show = 4
[runtime]
threads = 1
[[run]]
method = "sds"
[[run]]
method = "vsd"
fake = "embedding"
[[run]]
method = "asd"
fake = "lora"
[[run]]
method = "asd"
fake = "copy"
asd_real = true
TOML
"$bin" bench-2d --config bench.toml --out bench --no-progress > table.md 2> bench.log || { cat bench.log; exit 1; }
cat table.md
for row in 'real (train split)' 'teacher DDIM 3' 'sds' 'vsd-embedding' 'asd-lora-eq6' 'asd-copy-eq5'; do
  grep -q "^| $row |" table.md || { echo "no row '$row'"; exit 1; }
done
[ "$(grep -c '^| ' table.md)" = 7 ] || { echo "expected header + 6 rows"; exit 1; }
grep -q '^| asd-copy-eq5 | asd | copy | Eq. 5 |' table.md || { echo "the Eq. 5 row does not say so"; exit 1; }
# The real images carry the particles' labels: the evaluator recognises them.
grep -q '^| real (train split) |.* | 1.000 | [0-9.]* |  |  |$' table.md || { echo "real images misclassified"; exit 1; }
for f in results.md results.json overview.png runs/asd-copy-eq5/particles.safetensors runs/sds/loss.png; do
  [ -s "bench/$f" ] || { echo "bench-2d wrote no $f"; exit 1; }
done
# A rerun keeps every finished row.
"$bin" bench-2d --config bench.toml --out bench --no-progress > again.md 2> again.log || { cat again.log; exit 1; }
cmp -s table.md again.md || { echo "the rerun changed the table"; diff table.md again.md; exit 1; }
echo "text2d cli ok"
