#!/usr/bin/python3
"""Turntable strips for the README: one row per prompt of an eval3d output, FRAMES evenly spaced
frames of each run's seed-0 turntable.gif, so floaters anywhere on the orbit show.

  bench/turntable_strip.py EVAL3D_OUT METHOD FRAMES OUT.png
  bench/turntable_strip.py out/eval3d-heldout-lora-clean asd 9 docs/eval3d-heldout-clean-turntables.png
"""
import pathlib
import sys

from PIL import Image, ImageSequence

if len(sys.argv) != 5:
    sys.exit(__doc__)
out, method, frames, png = pathlib.Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
gifs = sorted((out / "runs" / method).glob("*/seed-0/turntable.gif"))
if not gifs:
    sys.exit(f"turntable_strip: no {out}/runs/{method}/*/seed-0/turntable.gif")
rows = []
for gif in gifs:
    all_frames = [f.convert("RGB") for f in ImageSequence.Iterator(Image.open(gif))]
    rows.append([all_frames[k * len(all_frames) // frames] for k in range(frames)])
w, h = rows[0][0].size
img = Image.new("RGB", (w * frames, h * len(rows)), "white")
for i, row in enumerate(rows):
    for j, f in enumerate(row):
        img.paste(f, (j * w, i * h))
img.save(png)
print(f"wrote {png}: rows {', '.join(g.parts[-3] for g in gifs)}")
