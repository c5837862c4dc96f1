#!/usr/bin/env bash
# Data-parallel scaling on this machine (README "Many processes, many machines"): ms per step of
# train-teacher (configs/fmnist-teacher.toml, batch 64) and of a DMD2 update
# (configs/fmnist-dmd2-long.toml: 5 critic updates + 1 student update, batch 32) for
#   1x1   1 process x 1 thread (the base),
#   2x1   2 processes x 1 thread (torchrun, Gloo on loopback), all-reduce overlapped with backward,
#   2x1s  the same with runtime.overlap = false (all-reduce after the backward pass),
#   1x2   1 process x 2 threads,
#   1x1h  1 process on one rank's half of the batch, alone: two ranks' limit with nothing communicated,
#   1x1p  two such processes at once, independent: that limit with the machine shared as two ranks share it;
# the speed-up, the efficiency (speed-up / 2), each rank's share of time in collectives (waiting for
# the other rank included); then Gloo's all-reduce (bench-allreduce) at the teacher's gradient size
# and at one 25 MiB bucket.
# The shapes run in turn, ROUNDS times over, and each row is the median over the rounds: this
# shared machine drifts by ±10% over minutes, more than the differences between rows.
# A teacher step's time is the difference of two runs' training seconds (as the command reports
# them) over the steps between; a DMD2 update's comes from the seconds column of its metrics.csv;
# so neither counts start-up or torchrun's rendezvous. Needs the machine otherwise idle; ~2 min a round.
# Usage: bench/data_parallel.sh [ROUNDS TEACHER_SHORT TEACHER_LONG DMD2_UPDATES]   (default 3 10 110 5)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$PWD/build/retort
rounds=${1:-3} ts=${2:-10} tl=${3:-110} dl=${4:-5}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
two() { /usr/bin/torchrun --standalone --nnodes 1 --nproc_per_node 2 --redirects 1 --tee 1 --no_python "$@"; }
quiet() {  # quiet LOG COMMAND...: the command's output into LOG, shown only when it fails
  local log=$1; shift
  "$@" > "$log" 2>&1 || { cat "$log"; exit 1; }
}
launch() {  # launch one|two COMMAND...: as one process, or as two ranks under torchrun
  local how=$1; shift
  if [ "$how" = two ]; then two "$@"; else "$@"; fi
}
teacher() {  # teacher one|two NAME STEPS THREADS BATCH [--set ...]: train-teacher into $tmp/NAME-STEPS
  local how=$1 name=$2 k=$3 threads=$4 batch=$5; shift 5
  launch "$how" "$bin" train-teacher --config configs/fmnist-teacher.toml --out "$tmp/$name-$k" --stop-after "$k" \
    --set runtime.threads="$threads" --set train.batch="$batch" --no-progress "$@"
}
dmd2() {  # dmd2 one|two NAME THREADS BATCH [--set ...]: DMD2 updates into $tmp/NAME
  local how=$1 name=$2 threads=$3 batch=$4; shift 4
  launch "$how" "$bin" distill --config configs/fmnist-dmd2-long.toml --out "$tmp/$name" --set distill.steps="$dl" \
    --set distill.log_every=1 --set distill.checkpoint_every=100000 --set runtime.threads="$threads" \
    --set distill.batch="$batch" --no-progress "$@"
}
for r in $(seq "$rounds"); do
  for k in "$ts" "$tl"; do
    quiet "$tmp/t1x1-$r-$k.log" teacher one "t1x1-$r" "$k" 1 64
    quiet "$tmp/t2x1-$r-$k.log" teacher two "t2x1-$r" "$k" 1 64
    quiet "$tmp/t2x1s-$r-$k.log" teacher two "t2x1s-$r" "$k" 1 64 --set runtime.overlap=false
    quiet "$tmp/t1x2-$r-$k.log" teacher one "t1x2-$r" "$k" 2 64
    quiet "$tmp/t1x1h-$r-$k.log" teacher one "t1x1h-$r" "$k" 1 32
    teacher one "t1x1p-$r" "$k" 1 32 > "$tmp/t1x1p-$r-$k.log" 2>&1 &
    quiet "$tmp/t1x1q-$r-$k.log" teacher one "t1x1q-$r" "$k" 1 32
    wait $! || { cat "$tmp/t1x1p-$r-$k.log"; exit 1; }
  done
  quiet "$tmp/d1x1-$r.log" dmd2 one "d1x1-$r" 1 32
  quiet "$tmp/d2x1-$r.log" dmd2 two "d2x1-$r" 1 32
  quiet "$tmp/d2x1s-$r.log" dmd2 two "d2x1s-$r" 1 32 --set runtime.overlap=false
  quiet "$tmp/d1x2-$r.log" dmd2 one "d1x2-$r" 2 32
  quiet "$tmp/d1x1h-$r.log" dmd2 one "d1x1h-$r" 1 16
  dmd2 one "d1x1p-$r" 1 16 > "$tmp/d1x1p-$r.log" 2>&1 &
  quiet "$tmp/d1x1q-$r.log" dmd2 one "d1x1q-$r" 1 16
  wait $! || { cat "$tmp/d1x1p-$r.log"; exit 1; }
done
grad_mib=$(/usr/bin/python3 -c "import os; print(os.path.getsize('weights/fmnist-teacher.safetensors') / 2**20)")
two "$bin" bench-allreduce --mb "$grad_mib" --iters 50 2>/dev/null | grep -o '{.*}' > "$tmp/allreduce.jsonl"
two "$bin" bench-allreduce --mb 25 --iters 20 2>/dev/null | grep -o '{.*}' >> "$tmp/allreduce.jsonl"
/usr/bin/python3 - "$tmp" "$rounds" "$ts" "$tl" "$dl" <<'PY'
import csv, glob, json, re, statistics, sys
d, rounds, ts, tl, dl = sys.argv[1], *map(int, sys.argv[2:])
def teacher_ms(shape, r):
    s = [float(re.search(r"([\d.]+) s in this invocation", open(f"{d}/t{shape}-{r}-{k}.log").read()).group(1))
         for k in (ts, tl)]
    return 1000 * (s[1] - s[0]) / (tl - ts)
def dmd2_ms(shape, r):
    rows = max((list(csv.DictReader(open(f))) for f in glob.glob(f"{d}/d{shape}-{r}/**/metrics.csv", recursive=True)),
               key=len)
    return 1000 * (float(rows[-1]["seconds"]) - float(rows[0]["seconds"])) / (len(rows) - 1)
def median(ms_of, shape):
    if shape == "1x1p":  # the two processes that ran at once
        return statistics.median((ms_of("1x1p", r) + ms_of("1x1q", r)) / 2 for r in range(1, rounds + 1))
    return statistics.median(ms_of(shape, r) for r in range(1, rounds + 1))
def share(log):
    got = re.findall(r"rank (\d) of 2: ([\d.]+) s of ([\d.]+) s in collectives", open(log).read())
    return " / ".join(f"{100 * float(c) / float(t):.0f}%" for _, c, t in sorted(got)) or "—"
names = {"1x1": "1 process, 1 thread", "2x1": "2 processes x 1 thread (Gloo), all-reduce overlapped with backward",
         "2x1s": "2 processes x 1 thread (Gloo), all-reduce after backward", "1x2": "1 process, 2 threads",
         "1x1h": "limit: 1 process on half the batch, alone (nothing communicated)",
         "1x1p": "limit: 2 such processes at once, independent"}
for work, ms_of, what in (("t", teacher_ms, f"train-teacher, batch 64, 16 px (steps {ts} to {tl})"),
                          ("d", dmd2_ms, f"DMD2 update (5 critic + 1 student), batch 32, 16 px ({dl} updates)")):
    print(f"\n{what}; median of {rounds} rounds")
    print("| processes x threads | ms/step | speed-up | efficiency | time in collectives (rank 0 / 1), round 1 |")
    print("|---|---|---|---|---|")
    base = median(ms_of, "1x1")
    for shape in names:
        ms = median(ms_of, shape)
        speed = base / ms  # a limit row's step is one rank's half: what two ranks' step would take
        log = f"{d}/{work}{shape}-1-{tl}.log" if work == "t" else f"{d}/{work}{shape}-1.log"
        print(f"| {names[shape]} | {ms:.0f} | {speed:.2f}x | {'—' if shape == '1x1' else f'{50 * speed:.0f}%'} | "
              f"{share(log) if shape.startswith('2x1') else '—'} |")
print("\nGloo all-reduce on loopback, 2 ranks (bench-allreduce):")
print("| MiB | buckets | median ms | algbw GB/s | busbw GB/s |")
print("|---|---|---|---|---|")
for line in open(f"{d}/allreduce.jsonl"):
    j = json.loads(line)
    print(f"| {j['mib']:.2f} | {j['buckets']} | {j['ms_median']:.2f} | {j['algbw_GBps']:.2f} | {j['busbw_GBps']:.2f} |")
PY
