#!/usr/bin/env bash
# README "Where the time goes": each workload under `bench-step --profile`, one markdown row each:
# ms per step (unprofiled) and profiled, GFLOP per step, GFLOP/s, the fraction of the machine's
# peak, the share of each op category, and the top 4 ops.
# Usage: bench/profile_table.sh [ROW ...]   rows: unet-train ddim-sample dmd2-update fvgen-update
#        generate3d-asd-hash generate3d-sds-hash generate3d-asd-voxel (default: all)
# RETORT_BIN overrides ./build/retort. fvgen-update needs rendered scenes: FVGEN_SCENES=DIR with
# DIR/train.safetensors and DIR/test.safetensors (retort render-scenes --config configs/scenes.toml
# --out DIR --set scenes.train=256 --set scenes.test=16).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${RETORT_BIN:-./build/retort}
[ -x "$BIN" ] || { echo "profile_table: $BIN not found; build first (scripts/build.sh)" >&2; exit 2; }
. bench/workload_rows.sh
rows=("$@")
[ ${#rows[@]} -gt 0 ] || rows=("${ALL_ROWS[@]}")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for r in "${rows[@]}"; do
  row_args profile_table "$r"
  "$BIN" bench-step "${args[@]}" --profile 2>/dev/null | tail -n 1 >"$tmp/$r.json"
  echo "$r done (load $(cut -d' ' -f1 /proc/loadavg))" >&2
done
python3 - "$tmp" "${rows[@]}" <<'PYEOF'
import json, sys
d, rows = sys.argv[1], sys.argv[2:]
cats = ["convolution", "gemm", "attention", "elementwise", "normalisation", "copy/alloc", "hash grid"]
print("| workload | ms per step | profiled | GFLOP per step | GFLOP/s | fraction of peak | "
      + " | ".join(cats) + " | autograd + outside ops | top ops (ms per step) |")
print("|---" * (len(cats) + 8) + "|")
for r in rows:
    j = json.load(open(f"{d}/{r}.json"))
    ms = next(j[k] for k in ("ms_per_update", "ms_per_step", "ms_per_run") if k in j)
    ops = j["ops"]
    c = ops["categories"]
    share = lambda k: "–" if c[k]["ms"] == 0 else f"{100 * c[k]['share']:.1f} %"
    rest = c["autograd"]["share"] + c["outside ops"]["share"]
    top = ", ".join(f"{t['name'].split('::')[-1]} {t['ms_per_step']:.1f}" for t in ops["top"][:4])
    print(f"| `{r}` | {ms:.1f} | {ops['profiled_ms_per_step']:.1f} | {j['flops_per_step'] / 1e9:.2f} | {j['gflops']:.0f} | "
          f"**{j['fraction_of_peak']:.2f}** | " + " | ".join(share(k) for k in cats) + f" | {100 * rest:.1f} % | {top} |")
PYEOF
