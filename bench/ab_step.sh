#!/usr/bin/env bash
# Before/after on one bench-step workload: two retort binaries (or one binary with two sets of
# flags) alternated A B A B ..., so machine noise hits both alike. Prints the medians of each, their
# min-max, and the ratio A / B (ratio of the medians; min-max over the rounds' ratios).
# Usage: bench/ab_step.sh ROUNDS BIN_A BIN_B [bench-step flags for both ...] [-- flags for B only]
#   bench/ab_step.sh 5 /tmp/retort-before build/retort --workload ddim-sample
#   bench/ab_step.sh 5 build/retort build/retort --workload generate3d -- --hash-path tensor
# The metric is the workload's own: ms_per_update, ms_per_image or ms_per_step.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 3 ] || { echo "usage: bench/ab_step.sh ROUNDS BIN_A BIN_B [flags] [-- flags for B]" >&2; exit 2; }
ROUNDS=$1 A=$2 B=$3
shift 3
common=() only_b=()
while [ $# -gt 0 ]; do
  if [ "$1" = "--" ]; then shift; only_b=("$@"); break; fi
  common+=("$1"); shift
done
for bin in "$A" "$B"; do [ -x "$bin" ] || { echo "ab_step: $bin is not an executable" >&2; exit 2; }; done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for i in $(seq "$ROUNDS"); do
  "$A" bench-step "${common[@]}" >>"$tmp/a.jsonl"
  "$B" bench-step "${common[@]}" "${only_b[@]}" >>"$tmp/b.jsonl"
  echo "round $i of $ROUNDS done (load $(cut -d' ' -f1 /proc/loadavg))" >&2
done
python3 - "$tmp" "$A" "$B ${only_b[*]}" <<'PYEOF'
import json, statistics, sys
d, name_a, name_b = sys.argv[1:4]
a = [json.loads(l) for l in open(f"{d}/a.jsonl")]
b = [json.loads(l) for l in open(f"{d}/b.jsonl")]
key = next(k for k in ("ms_per_update", "ms_per_image", "ms_per_step") if k in a[0])
va, vb = [r[key] for r in a], [r[key] for r in b]
ratios = [x / y for x, y in zip(va, vb)]
print(f"{a[0].get('workload', 'mlp')}: {len(va)} alternated rounds, {key}, medians (min-max)\n")
print("| A | B | A / B |")
print("|---|---|---|")
print(f"| {statistics.median(va):.2f} ({min(va):.2f}-{max(va):.2f}) | {statistics.median(vb):.2f} "
      f"({min(vb):.2f}-{max(vb):.2f}) | **{statistics.median(va) / statistics.median(vb):.2f}x** "
      f"({min(ratios):.2f}-{max(ratios):.2f}) |")
print(f"\nA: {name_a}\nB: {name_b}")
PYEOF
