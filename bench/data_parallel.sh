#!/usr/bin/env bash
# Data-parallel scaling on this machine (README "Many processes, many machines"): ms per step of
# train-teacher (configs/fmnist-teacher.toml) and of a DMD2 update (configs/fmnist-dmd2-long.toml:
# 5 critic updates + 1 student update, batch 32) at 1 process x 1 thread, 2 processes x 1 thread
# (torchrun, Gloo on loopback) and 1 process x 2 threads; the speed-up, the 2-rank efficiency, and
# each rank's share of time in collectives (waiting for the other rank included); then Gloo's
# all-reduce (bench-allreduce) at the teacher's gradient size and at one 25 MiB bucket.
# A teacher step's time is the difference of two runs' training seconds (as the command reports
# them) over the steps between; a DMD2 update's comes from the seconds column of its metrics.csv;
# so neither counts start-up or torchrun's rendezvous.
# Needs the machine otherwise idle; minutes.
# Usage: bench/data_parallel.sh [TEACHER_SHORT TEACHER_LONG DMD2_UPDATES]   (default 10 60 5)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$PWD/build/retort
ts=${1:-10} tl=${2:-60} dl=${3:-5}
tmp=$(mktemp -d)
two() { /usr/bin/torchrun --standalone --nnodes 1 --nproc_per_node 2 --redirects 1 --tee 1 --no_python "$@"; }
run() {  # run NAME LAUNCH... : output into $tmp/NAME.log
  local name=$1; shift
  "$@" > "$tmp/$name.log" 2>&1 || { cat "$tmp/$name.log"; exit 1; }
}
for shape in 1x1 2x1 1x2; do
  threads=${shape#*x}
  launch=(); [ "${shape%x*}" = 2 ] && launch=(two)
  for k in "$ts" "$tl"; do
    run "teacher-$shape-$k" "${launch[@]}" "$bin" train-teacher --config configs/fmnist-teacher.toml \
      --out "$tmp/teacher-$shape-$k" --stop-after "$k" --set runtime.threads="$threads" --no-progress
  done
  run "dmd2-$shape" "${launch[@]}" "$bin" distill --config configs/fmnist-dmd2-long.toml --out "$tmp/dmd2-$shape" \
    --set distill.steps="$dl" --set distill.log_every=1 --set distill.checkpoint_every=100000 \
    --set runtime.threads="$threads" --no-progress
done
grad_mib=$(/usr/bin/python3 -c "import os; print(os.path.getsize('weights/fmnist-teacher.safetensors') / 2**20)")
two "$bin" bench-allreduce --mb "$grad_mib" --iters 50 2>/dev/null | grep -o '{.*}' > "$tmp/allreduce.jsonl"
two "$bin" bench-allreduce --mb 25 --iters 20 2>/dev/null | grep -o '{.*}' >> "$tmp/allreduce.jsonl"
/usr/bin/python3 - "$tmp" "$ts" "$tl" "$dl" <<'PY'
import csv, glob, json, re, sys
d, ts, tl, dl = sys.argv[1], *map(int, sys.argv[2:])
def teacher_ms(shape):
    s = [float(re.search(r"([\d.]+) s in this invocation", open(f"{d}/teacher-{shape}-{k}.log").read()).group(1))
         for k in (ts, tl)]
    return 1000 * (s[1] - s[0]) / (tl - ts)
def dmd2_ms(shape):
    rows = max((list(csv.DictReader(open(f))) for f in glob.glob(f"{d}/dmd2-{shape}/**/metrics.csv", recursive=True)), key=len)
    return 1000 * (float(rows[-1]["seconds"]) - float(rows[0]["seconds"])) / (len(rows) - 1)
def share(n):
    got = re.findall(r"rank (\d) of 2: ([\d.]+) s of ([\d.]+) s in collectives", open(f"{d}/{n}.log").read())
    return " / ".join(f"{100 * float(c) / float(t):.0f}%" for _, c, t in sorted(got)) or "—"
names = {"1x1": "1 process, 1 thread", "2x1": "2 processes x 1 thread (Gloo)", "1x2": "1 process, 2 threads"}
for work, ms_of, what in (("teacher", teacher_ms, f"train-teacher, batch 64, 16 px (steps {ts} to {tl})"),
                          ("dmd2", dmd2_ms, f"DMD2 update (5 critic + 1 student), batch 32, 16 px ({dl} updates)")):
    print(f"\n{what}")
    print("| processes x threads | ms/step | speed-up | efficiency | time in collectives (rank 0 / 1) |")
    print("|---|---|---|---|---|")
    base = None
    for shape in ("1x1", "2x1", "1x2"):
        ms = ms_of(shape)
        base = base or ms
        eff = f"{100 * base / ms / 2:.0f}%" if shape != "1x1" else "—"
        print(f"| {names[shape]} | {ms:.0f} | {base / ms:.2f}x | {eff} | {share(f'{work}-{shape}-{tl}' if work == 'teacher' else f'{work}-{shape}') if shape == '2x1' else '—'} |")
print("\nGloo all-reduce on loopback, 2 ranks (bench-allreduce):")
print("| MiB | buckets | median ms | algbw GB/s | busbw GB/s |")
print("|---|---|---|---|---|")
for line in open(f"{d}/allreduce.jsonl"):
    j = json.loads(line)
    print(f"| {j['mib']:.2f} | {j['buckets']} | {j['ms_median']:.2f} | {j['algbw_GBps']:.2f} | {j['busbw_GBps']:.2f} |")
PY
rm -rf "$tmp"
