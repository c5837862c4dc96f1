#!/bin/bash
# Text-to-3D's clean-geometry switches, each measured against the true object: runs `retort eval3d`
# once per variant (a name and its --set overrides) into OUT/NAME and prints one markdown row per
# variant x method: the mean over prompts (and seeds) of p(prompt), silhouette IoU, occupancy IoU
# and Chamfer distance, from each variant's results.json; and OUT/geometry3d.png, one row per variant
# (in the file's order) of the first method's seed-0 fields, two views per prompt (needs Pillow).
# Finished runs are kept (eval3d resumes).
#
#   bench/geometry3d.sh CONFIG OUT VARIANTS_FILE [--set KEY=VALUE ...]
#   bench/geometry3d.sh configs/text3d.toml out/geometry3d bench/geometry3d-variants.txt \
#       --set 'prompts_file="configs/prompts-heldout.txt"' --set 'methods=["sds"]' --set eval3d.seeds=1
#
# VARIANTS_FILE: one variant per line, "NAME KEY=VALUE KEY=VALUE ..." ('#' starts a comment).
# The trailing --set options apply to every variant. RETORT names the binary (default build/retort).
set -euo pipefail
if [ $# -lt 3 ]; then
  sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
fi
config=$1 out=$2 variants=$3
shift 3
retort=${RETORT:-build/retort}
for f in "$config" "$variants" "$retort"; do
  [ -e "$f" ] || { echo "geometry3d: $f: no such file" >&2; exit 2; }
done
mkdir -p "$out"
names=()
while read -r name rest; do
  case "$name" in '' | '#'*) continue ;; esac
  sets=()
  for kv in $rest; do sets+=(--set "$kv"); done
  echo "geometry3d: $name: ${rest:-(defaults)}" >&2
  "$retort" eval3d --config "$config" --out "$out/$name" "$@" ${sets[@]+"${sets[@]}"} > "$out/$name.log" 2>&1 ||
    { echo "geometry3d: $name failed; see $out/$name.log" >&2; tail -3 "$out/$name.log" >&2; exit 1; }
  names+=("$name")
done < "$variants"
python3 - "$out" "${names[@]}" <<'EOF' | tee "$out/geometry3d.md"
import json, statistics, sys
out, names = sys.argv[1], sys.argv[2:]
cols = ["p_prompt", "silhouette_iou", "occupancy_iou", "chamfer"]
print("| variant | method | runs | p(prompt) | silhouette IoU | occupancy IoU | Chamfer |")
print("|---|---|---:|---:|---:|---:|---:|")
for name in names:
    rows = json.load(open(f"{out}/{name}/results.json"))
    methods = [m for m in dict.fromkeys(r["method"] for r in rows) if m not in ("true object", "initial field")]
    for m in methods:
        mine = [r["scores"] for r in rows if r["method"] == m]
        cells = []
        for c in cols:
            v = [s[c] for s in mine if isinstance(s.get(c), (int, float))]
            cells.append(f"{statistics.mean(v):.3f}" if c != "chamfer" else f"{statistics.mean(v):.4f}")
        print(f"| {name} | {m} | {len(mine)} | " + " | ".join(cells) + " |")
EOF
/usr/bin/python3 - "$out" "${names[@]}" <<'EOF' || echo "geometry3d: no picture (needs /usr/bin/python3 with Pillow)" >&2
import json, sys
from PIL import Image
out, names = sys.argv[1], sys.argv[2:]
rows = []
for name in names:
    runs = [r for r in json.load(open(f"{out}/{name}/results.json"))
            if r["method"] not in ("true object", "initial field") and r.get("seed", 0) == 0]
    method = runs[0]["method"]
    tiles = []
    for r in runs:
        if r["method"] != method:
            continue
        slug = r["prompt"].split(" ", 1)[1].replace(" ", "-")  # "a red torus" -> red-torus, as eval3d names it
        views = Image.open(f"{out}/{name}/runs/{method}/{slug}/seed-0/views.png").convert("RGB")
        w = views.height  # square tiles in a row
        tiles += [views.crop((k * w, 0, (k + 1) * w, w)) for k in (0, 2)]
    rows.append(tiles)
w = rows[0][0].width
img = Image.new("RGB", (w * max(len(r) for r in rows), w * len(rows)), "white")
for i, r in enumerate(rows):
    for j, t in enumerate(r):
        img.paste(t, (j * w, i * w))
img.save(f"{out}/geometry3d.png")
print(f"wrote {out}/geometry3d.md, {out}/geometry3d.png (rows: {', '.join(names)})")
EOF
