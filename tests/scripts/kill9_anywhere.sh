#!/bin/sh
# Kill -9 anywhere, resume to the same bits (issue 24, section 3). Every long-running command
# (train-teacher, train-evaluator, distill through both stages, bench-gmm, bench-distill, generate3d,
# eval3d) runs once uninterrupted on a tiny config; then, KILL9_POINTS times per command (default
# 3: 21 points), the same command on a fresh folder is SIGKILLed at a pseudo-random moment, some
# points twice (the second kill lands in the resumed run), and rerun to the end. After every kill:
# no final product yet (else the point is "finished before kill", retried with a shorter delay),
# every *.safetensors on disk loads, every checkpoint is a whole zip, every *.json parses. After the
# rerun every file of the folder equals the uninterrupted run's: byte for byte, except wall times
# (see kill9_anywhere.py: JSON keys / table columns "seconds", "s/it", "ms/sample", "speed-up"),
# report.html, the .lock file and checkpoint.pt (LibTorch names its records by memory address).
# Half the kills are aimed at a write: after the delay they wait for the next checkpoint.pt.tmp
# (first kills) or any NAME.tmp (a checkpoint, weights, results or config file being written by
# write_file_atomically; second kills) and kill at once.
#
# Delays are drawn from KILL9_SEED (default 1), stratified: point k of P lands in the k-th P-th of
# the span between half the time to the first checkpoint and the end of the uninterrupted run;
# distill's first point lies in stage 1 and the others in stage 2 (both checked). Exit 1 naming
# command, point and file on any difference, half-written file or failed rerun (all commands are
# still run and listed).
# KILL9_COMMANDS="distill eval3d" runs a subset. Needs python3 (PYTHON=...).
# Usage: kill9_anywhere.sh RETORT_BIN SOURCE_DIR WORK_DIR
# shellcheck disable=SC2046  # $(args ...) and $(finals ...) are split into words on purpose
set -eu
bin=$1
src=$2
work=$3
points=${KILL9_POINTS:-3}
rng=${KILL9_SEED:-1}
py=${PYTHON:-/usr/bin/python3}
helper="$src/tests/scripts/kill9_anywhere.py"
start_s=$(date +%s)
rm -rf "$work"
mkdir -p "$work/whole" "$work/killed"
cd "$work"

# ---- tiny configs (each full run takes one to four seconds on one thread) ----
cp "$src/tests/scripts/tiny_teacher.toml" teacher.toml
cat >> teacher.toml <<'TOML'
[train]
steps = 200
batch = 16
checkpoint_every = 5
log_every = 5
seed = 3
TOML
cp "$src/tests/scripts/tiny_evaluator.toml" evaluator.toml  # made longer by args()' --set
# fvgen: stage 1 (GAN initialisation against real images) then stage 2 (softened RKL)
cat > distill.toml <<'TOML'
teacher = "whole/train-teacher/teacher.safetensors"
[data]
source = "fashion-mnist"
resolution = 8
[distill]
method = "fvgen"
student_steps = 2
gan_init_steps = 60
steps = 60
batch = 8
log_every = 2
checkpoint_every = 2
seed = 5
[runtime]
threads = 1
TOML
cat > gmm.toml <<'TOML'
seed = 0
[runtime]
threads = 1
[target]
preset = "ring"
modes = 8
[eval]
samples = 200
reference = 500
[defaults]
steps = 60
batch = 64
critic_steps = 2
log_every = 5
checkpoint_every = 5
particles = 128
fake_hidden = 32
disc_hidden = 32
gen_hidden = 32
[[run]]
method = "vsd"
generator = "particles"
lr = 1e-2
[[run]]
method = "dmd2"
generator = "network"
gan_weight = 0.01
[[run]]
method = "gan"
generator = "network"
TOML
cat > bench.toml <<'TOML'
teacher = "whole/train-teacher/teacher.safetensors"
evaluator = "whole/train-evaluator/evaluator.safetensors"
[data]
source = "fashion-mnist"
resolution = 8
[eval]
n = 40
teacher_steps = [4]
[distill]
student_steps = 2
gan_init_steps = 10
steps = 15
batch = 8
log_every = 1
checkpoint_every = 1
seed = 2
[runtime]
threads = 1
[[run]]
method = "fvgen"
[[run]]
method = "dmd"
TOML
sed -e "s|^teacher = .*|teacher = \"$src/weights/world-teacher.safetensors\"|" \
  -e "s|^evaluator = .*|evaluator = \"$src/weights/world-evaluator.safetensors\"|" \
  -e 's/^prompts = .*/prompts = ["a red torus"]/' "$src/configs/text3d.toml" > text3d.toml
g3d="--config text3d.toml --set generate3d.steps=20 --set generate3d.checkpoint_every=2 --set generate3d.log_every=2
  --set output.gif_frames=4 --set output.resolution=32 --set output.mesh_resolution=24 --set output.mesh_threshold=5
  --set runtime.threads=1"

all="train-teacher train-evaluator distill bench-gmm bench-distill generate3d eval3d"
commands=${KILL9_COMMANDS:-$all}  # a subset, e.g. KILL9_COMMANDS=eval3d
for c in $commands; do
  case " $all " in *" $c "*) ;; *) echo "KILL9_COMMANDS: unknown command $c (one of: $all)"; exit 2 ;; esac
done
# distill and bench-distill read the uninterrupted teacher's and evaluator's weights
uninterrupted=$commands
case " $commands " in
  *" distill "* | *" bench-distill "*)
    case " $commands " in *" train-evaluator "*) ;; *) uninterrupted="train-evaluator $uninterrupted" ;; esac
    case " $commands " in *" train-teacher "*) ;; *) uninterrupted="train-teacher $uninterrupted" ;; esac ;;
esac
args() {  # args COMMAND OUT: retort's arguments (no spaces inside one)
  case $1 in
    train-teacher) echo "train-teacher --config teacher.toml" ;;
    train-evaluator) echo "train-evaluator --config evaluator.toml --set evaluator.steps=300 --set evaluator.seed=3
      --set evaluator.log_every=5 --set evaluator.checkpoint_every=5 --set evaluator.monitor=50" ;;
    distill) echo "distill --config distill.toml" ;;
    bench-gmm) echo "bench-gmm --config gmm.toml" ;;
    bench-distill) echo "bench-distill --config bench.toml" ;;
    generate3d) echo "generate3d $g3d --set generate3d.method=vsd" ;;
    eval3d) echo "eval3d $g3d --set generate3d.steps=10 --set methods=[\"sds\",\"asd\"] --set eval3d.views=4 --set eval3d.ring=4 --set eval3d.seeds=1" ;;
  esac
  echo "--out $2 --no-progress"
}
finals() {  # the command's final product: it exists only once the run has finished
  case $1 in
    train-teacher) echo teacher.safetensors ;;
    train-evaluator) echo evaluator.safetensors ;;
    distill) echo student.safetensors ;;
    generate3d) echo field.safetensors ;;
    *) echo results.json ;;
  esac
}
next() {  # next LO HI: a pseudo-random integer in [LO, HI] into $r (an LCG seeded by KILL9_SEED)
  rng=$(( (rng * 1103515245 + 12345) % 2147483648 ))
  r=$(( $1 + (rng / 65536) % ($2 - $1 + 1) ))
}

failures=""
fail() { echo "kill9 anywhere: FAILED $*"; failures="$failures
  $*"; }
total_points=0 total_kills=0 write_hits=0 ckpt_hits=0 early=0 ncmd=0

# ---- the uninterrupted runs ----
for c in $uninterrupted; do
  t=$($py "$helper" whole "whole/$c.log" "whole/$c" "$bin" $(args "$c" "whole/$c")) ||
    { cat "whole/$c.log"; echo "kill9 anywhere: the uninterrupted $c run failed"; exit 1; }
  eval "dur_$(echo "$c" | tr - _)='$t'"
  echo "$c: uninterrupted run $(echo "$t" | cut -d' ' -f1) ms (first checkpoint at $(echo "$t" | cut -d' ' -f2) ms$(
    [ "$(echo "$t" | cut -d' ' -f3)" = 0 ] || echo ", stage 2 from $(echo "$t" | cut -d' ' -f3) ms"))"
done

# kill_once C DIR K MODE DELAY LOG: one killed run; sets $outcome (killed|exited), $at (ms), $disk
# (what was on disk) and $state (0 ok, 1 half-written file, 3 final product present)
kill_once() {
  o=$($py "$helper" kill "$6" "$2" "$4" "$5" "$bin" $(args "$1" "$2"))
  outcome=$(echo "$o" | cut -d' ' -f1)
  at=$(echo "$o" | cut -d' ' -f2)
  set +e
  disk=$($py "$helper" check "$2" "$(echo "$o" | cut -d' ' -f3)" $(finals "$1"))
  state=$?
  set -e
  if [ "$outcome" = exited ] && [ "$(echo "$o" | cut -d' ' -f4)" != 0 ]; then
    state=1
    disk="the run exited $(echo "$o" | cut -d' ' -f4) before its kill: $(tail -n 2 "$6" | tr '\n' ' ')"
  fi
}

for c in $commands; do
  ncmd=$((ncmd + 1))
  t=$(eval "echo \$dur_$(echo "$c" | tr - _)")
  D=$(echo "$t" | cut -d' ' -f1)
  F=$(echo "$t" | cut -d' ' -f2)
  S2=$(echo "$t" | cut -d' ' -f3)  # when stage 2 began (distill), else 0
  lo=$((F / 2))
  [ "$lo" -ge 10 ] || lo=10
  stage1=0 stage2=0
  kills0=$total_kills writes0=$write_hits ckpts0=$ckpt_hits early0=$early points0=$total_points
  k=0
  while [ $k -lt "$points" ]; do
    k=$((k + 1))
    dir="killed/$c-$k"
    # stratified: point k's delay lies in the k-th of `points` equal parts of [lo, D]
    # (distill: point 1 in the first two thirds of stage 1, the others stratified over stage 2,
    # so both stages are killed however fast the machine is)
    if [ "$S2" -gt $((lo + 30)) ] && [ "$points" -ge 2 ]; then
      if [ $k = 1 ]; then a=$lo b=$((lo + (S2 - lo) * 2 / 3))
      else a=$((S2 + (D - S2) * (k - 2) / (points - 1))) b=$((S2 + (D - S2) * (k - 1) / (points - 1))); fi
    else
      a=$((lo + (D - lo) * (k - 1) / points))
      b=$((lo + (D - lo) * k / points))
    fi
    next "$a" "$b"
    delay=$r
    if [ $(( (k + ncmd) % 2 )) = 0 ]; then mode="checkpoint"; else mode="time"; fi
    tries=0
    while :; do
      rm -rf "$dir"
      tries=$((tries + 1))
      kill_once "$c" "$dir" "$k" "$mode" "$delay" "$dir.kill1.log"
      [ "$state" != 1 ] || break
      [ "$state" = 3 ] || [ "$outcome" = exited ] || break
      early=$((early + 1))
      echo "$c kill $k: finished before kill at $delay ms ($mode); shortening the delay"
      [ $tries -lt 5 ] || { fail "$c kill $k: the run finished before every one of 5 kills"; state=2; break; }
      delay=$((lo + (delay - lo) / 2))
    done
    case $state in
      1) fail "$c kill $k: after the kill at $at ms: $disk"; continue ;;
      2) continue ;;
    esac
    total_kills=$((total_kills + 1))
    line="$c kill $k: killed at $at ms ($mode, $(echo "$disk" | head -n 1))"
    case $disk in *.tmp\ mid-write*) write_hits=$((write_hits + 1)) ;; esac
    case $disk in *checkpoint.pt.tmp\ mid-write*) ckpt_hits=$((ckpt_hits + 1)) ;; esac
    case $disk in *stage2/step*) stage2=$((stage2 + 1)) ;; *stage1/step*) stage1=$((stage1 + 1)) ;; esac
    # every third point: kill the resumed run too, somewhere before the rest of the work is done
    if [ $((k % 3)) = 0 ]; then
      rest=$((D - at + lo))
      [ "$rest" -gt $((lo + 10)) ] || rest=$((lo + 10))
      next "$lo" "$rest"
      if [ $(( (k + ncmd) % 2 )) = 0 ]; then mode="time"; else mode="write"; fi
      kill_once "$c" "$dir" "$k" "$mode" "$r" "$dir.kill2.log"
      if [ "$state" = 1 ]; then fail "$c kill $k: after the second kill at $at ms: $disk"; continue; fi
      if [ "$state" = 3 ] || [ "$outcome" = exited ]; then
        early=$((early + 1))
        line="$line, the resumed run finished before a second kill at $r ms"
      else
        total_kills=$((total_kills + 1))
        line="$line, its resumed run killed at $at ms ($mode, $(echo "$disk" | head -n 1))"
        case $disk in *.tmp\ mid-write*) write_hits=$((write_hits + 1)) ;; esac
        case $disk in *checkpoint.pt.tmp\ mid-write*) ckpt_hits=$((ckpt_hits + 1)) ;; esac
        case $disk in *stage2/step*) stage2=$((stage2 + 1)) ;; *stage1/step*) stage1=$((stage1 + 1)) ;; esac
      fi
    fi
    if ! "$bin" $(args "$c" "$dir") > "$dir.resume.log" 2>&1; then
      fail "$c kill $k: the rerun failed: $(tail -n 3 "$dir.resume.log" | tr '\n' ' ')(after: $line)"
      continue
    fi
    if ! diff=$($py "$helper" same "whole/$c" "$dir"); then
      fail "$c kill $k: $diff (after: $line)"
      continue
    fi
    total_points=$((total_points + 1))
    echo "$line, resumed identical"
  done
  if [ "$c" = distill ] && [ "$points" -ge 2 ] && { [ $stage1 = 0 ] || [ $stage2 = 0 ]; }; then
    fail "distill: kills in stage 1: $stage1, in stage 2: $stage2 (both stages must be killed)"
  fi
  echo "$c: $((total_points - points0)) of $points points resumed identical; $((total_kills - kills0)) kills mid-run," \
    "$((ckpt_hits - ckpts0)) during a checkpoint write, $((write_hits - writes0 - ckpt_hits + ckpts0)) during another write;" \
    "$((early - early0)) finished before their kill$([ "$c" != distill ] || echo "; $stage1 in stage 1, $stage2 in stage 2")"
done

echo "kills: $total_kills landed mid-run ($write_hits during a write, $ckpt_hits of them a checkpoint's);" \
  "$early finished before their kill; $(( $(date +%s) - start_s )) s in all"
if [ -n "$failures" ]; then
  echo "kill9 anywhere: FAILED:$failures"
  exit 1
fi
echo "kill9 anywhere: $total_points points across $ncmd commands, all resumed identical"
