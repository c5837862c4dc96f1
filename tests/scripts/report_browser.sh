#!/bin/sh
# report.html in a real browser (issue 26): a tiny evaluator run, a tiny bench-gmm and a tiny
# generate3d write their reports at the end of the command; headless Chromium loads each (and a
# benchmark's run report and the index): no console errors, every picture loaded (the page counts
# them into <body data-images>; generate3d's include the mesh preview), one SVG point per metrics
# row, and a screenshot.
# Usage: report_browser.sh RETORT_BIN WORK_DIR
set -eu
bin=$1
work=$2
here=$(cd "$(dirname "$0")" && pwd)
browser=${CHROMIUM:-/usr/bin/chromium}
rm -rf "$work"
mkdir -p "$work"
cd "$work"
cp "$here/tiny_evaluator.toml" evaluator.toml
"$bin" train-evaluator --config evaluator.toml --out ev --set evaluator.log_every=5 --no-progress > ev.log 2>&1 || { cat ev.log; exit 1; }
"$bin" bench-gmm --config "$here/../../configs/gmm-ring8.toml" --out gmm --set defaults.steps=20 --set ratio.steps=20 --no-progress > gmm.log 2>&1 ||
  { cat gmm.log; exit 1; }
"$bin" generate3d --config "$here/../../configs/text3d.toml" --out g3d --prompt "a red torus" --method sds \
  --set generate3d.steps=10 --set output.gif_frames=4 --set output.resolution=32 --set output.mesh_resolution=24 \
  --set output.mesh_threshold=5 --set teacher="$here/../../weights/world-teacher.safetensors" --no-progress > g3d.log 2>&1 || { cat g3d.log; exit 1; }
for f in ev/report.html gmm/report.html gmm/runs/dmd2-network/report.html g3d/report.html g3d/mesh.png; do
  [ -s "$f" ] || { echo "$f was not written by the command"; exit 1; }
done
"$bin" report ev gmm --index index.html > report.log 2>&1 || { cat report.log; exit 1; }

show() {  # show PAGE NAME: the DOM after load, the browser's log, a screenshot
  flags="--headless --no-sandbox --disable-gpu --no-first-run --disable-background-networking --disable-component-update --disable-sync --user-data-dir=$work/profile-$2 --enable-logging=stderr --v=0"
  timeout 120 "$browser" $flags --virtual-time-budget=5000 --dump-dom "file://$work/$1" > "$2.dom" 2> "$2.console"
  timeout 120 "$browser" $flags --window-size=1000,1300 --screenshot="$work/$2.png" "file://$work/$1" > /dev/null 2>&1
  [ -s "$2.png" ] || { echo "$1: no screenshot"; exit 1; }
  if grep -E "CONSOLE.*(Uncaught|Error)|ERR_FILE_NOT_FOUND" "$2.console"; then echo "$1: console errors"; exit 1; fi
}
show ev/report.html evaluator
show gmm/report.html bench
show gmm/runs/dmd2-network/report.html bench-run
show index.html index
show g3d/report.html generate3d
/usr/bin/python3 - "$work" <<'PY'
import csv, re, sys
work = sys.argv[1]
def check(dom_file, csv_files, min_images):
    dom = open(f"{work}/{dom_file}").read()
    m = re.search(r'data-images="(\d+)/(\d+)"', dom)
    assert m, f"{dom_file}: the page did not count its pictures (did its script run?)"
    loaded, total = int(m.group(1)), int(m.group(2))
    assert loaded == total >= min_images, f"{dom_file}: {loaded} of {total} pictures loaded"
    points = [len(p.split()) for p in re.findall(r'<polyline[^>]*points="([^"]*)"', dom)]
    expect = []
    for f in csv_files:
        rows = list(csv.DictReader(open(f"{work}/{f}")))
        for col in rows[0].keys():
            if col != "step":
                expect.append(sum(1 for r in rows if r[col] not in ("", "nan")))
    assert points == expect, f"{dom_file}: SVG points {points}, metrics rows {expect}"
    print(f"{dom_file}: {loaded}/{total} pictures, {len(points)} curves of {expect[:3]}... points")
check("evaluator.dom", ["ev/metrics.csv"], 2)
check("bench.dom", [], 12)
check("bench-run.dom", ["gmm/runs/dmd2-network/metrics.csv"], 0)
check("generate3d.dom", ["g3d/metrics.csv"], 4)
assert '<img src="mesh.png"' in open(f"{work}/generate3d.dom").read(), "generate3d's report shows no mesh preview"
index = open(f"{work}/index.dom").read()
assert index.count("report.html") >= 2, "the index does not link both reports"
PY
echo "report browser ok"
