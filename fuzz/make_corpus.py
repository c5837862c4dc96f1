#!/usr/bin/python3
"""Writes fuzz/corpus/NAME/ seeds: small valid files of every format and the corrupt cases the unit
tests use. Files retort makes itself (a checkpoint, rendered data sets) come from RETORT and
REPLAY. Crashing inputs the fuzzers found are kept beside them as crash-*/ (never regenerated).

  fuzz/make_corpus.py RETORT REPLAY      (e.g. build/retort build/fuzz/retort_fuzz_replay)
"""
import gzip, io, json, os, shutil, struct, subprocess, sys, tempfile
import numpy as np
from PIL import Image

here = os.path.dirname(os.path.abspath(__file__))
root = os.path.dirname(here)
corpus = os.path.join(here, "corpus")
retort, replay = sys.argv[1], sys.argv[2]


def put(target, name, data):
    d = os.path.join(corpus, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)


def safetensors(header, data=b""):
    h = json.dumps(header, separators=(",", ":")).encode()
    return struct.pack("<Q", len(h)) + h + data


# config: the first byte picks the command's reader (fuzz/config.cpp's order); the shipped configs
# and the test configs each go to their command's reader, and broken TOML to every reader.
readers = ["gmm", "teacher", "evaluator", "distill", "bench-distill", "generate3d", "eval3d", "nvs-teacher",
           "nvs-distill", "nvs-bench", "world", "scenes"]
def reader_of(name):
    for key, r in (("gmm", "gmm"), ("teacher", "teacher"), ("evaluator", "evaluator"), ("bench-all", "nvs-bench"),
                   ("nvs-bench", "nvs-bench"), ("nvs-distill", "nvs-distill"), ("nvs-fvgen", "nvs-distill"),
                   ("fmnist-bench", "bench-distill"), ("bench", "bench-distill"), ("distill", "distill"),
                   ("text3d", "eval3d"), ("world", "world"), ("scenes", "scenes")):
        if key in name:
            return "nvs-teacher" if (r == "teacher" and "nvs" in name) else r
    return "distill"
for d in ("configs", "tests/scripts"):
    for f in sorted(os.listdir(os.path.join(root, d))):
        if f.endswith(".toml"):
            text = open(os.path.join(root, d, f), "rb").read()
            put("config", f, bytes([readers.index(reader_of(f))]) + text)
            if "text3d" in f:
                put("config", "g3d-" + f, bytes([readers.index("generate3d")]) + text)
for i, r in enumerate(readers):
    put("config", f"bad-syntax-{r}", bytes([i]) + b"[distill\nsteps = ")
    put("config", f"bad-values-{r}", bytes([i]) + b"[distill]\nsteps = -1\nlr = nan\nbatch = 1e400\n[[run]]\nmethod = \"vds\"\n")
    put("config", f"bad-types-{r}", bytes([i]) + b"teacher = 3\n[runtime]\nthreads = \"two\"\ndevice = [1]\n")

# safetensors: every dtype, metadata, and the unit tests' corrupt cases
arr = np.arange(6, dtype=np.float32).tobytes()
put("safetensors", "f32.safetensors", safetensors({"w": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]},
                                                   "__metadata__": {"k": "v"}}, arr))
for dt, size in (("F64", 8), ("F16", 2), ("BF16", 2), ("I64", 8), ("I32", 4), ("I16", 2), ("I8", 1), ("U8", 1), ("BOOL", 1)):
    put("safetensors", f"{dt.lower()}.safetensors",
        safetensors({"a": {"dtype": dt, "shape": [2], "data_offsets": [0, 2 * size]},
                     "b": {"dtype": dt, "shape": [], "data_offsets": [2 * size, 3 * size]}}, bytes(range(3 * size))))
put("safetensors", "nan.safetensors", safetensors({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}},
                                                  struct.pack("<f", float("nan"))))
put("safetensors", "truncated.safetensors", safetensors({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}, bytes(12)))
put("safetensors", "overlap.safetensors", safetensors({"u": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                                                       "v": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}, bytes(16)))
put("safetensors", "huge-shape.safetensors", safetensors({"w": {"dtype": "F32", "shape": [4294967296, 4294967296], "data_offsets": [0, 16]}}, bytes(16)))
put("safetensors", "header-length.safetensors", b"\xff\xff\xff\xff\xff\xff\xff\x7f{}")
put("safetensors", "not-json.safetensors", struct.pack("<Q", 9) + b"{not json")

# idx: images and labels, raw and gzip, every element type, and short payloads
def idx(code, dims, payload):
    return bytes([0, 0, code, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims) + payload
put("idx", "images-ubyte", idx(0x08, [2, 3, 3], bytes(range(18))))
put("idx", "labels-ubyte", idx(0x08, [4], bytes([0, 1, 2, 9])))
put("idx", "images-ubyte.gz", gzip.compress(idx(0x08, [2, 3, 3], bytes(range(18)))))
for code, size in ((0x09, 1), (0x0B, 2), (0x0C, 4), (0x0D, 4), (0x0E, 8)):
    put("idx", f"type-{code:02x}", idx(code, [2, 2], bytes(4 * size)))
put("idx", "short-payload", idx(0x08, [2, 3, 3], bytes(5)))
put("idx", "huge-dims", idx(0x08, [0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF], b""))
put("idx", "bad-gzip.gz", b"\x1f\x8b\x08\x00" + bytes(12))

# image: PNG (grey, RGB, RGBA, palette, 16-bit) and JPEG (baseline, progressive, grey)
rng = np.random.default_rng(0)
def img_bytes(im, fmt, **kw):
    b = io.BytesIO()
    im.save(b, fmt, **kw)
    return b.getvalue()
rgb = Image.fromarray(rng.integers(0, 255, (6, 5, 3), dtype=np.uint8))
put("image", "rgb.png", img_bytes(rgb, "PNG"))
put("image", "grey.png", img_bytes(rgb.convert("L"), "PNG"))
put("image", "rgba.png", img_bytes(rgb.convert("RGBA"), "PNG"))
put("image", "palette.png", img_bytes(rgb.convert("P"), "PNG"))
put("image", "grey16.png", img_bytes(Image.fromarray(rng.integers(0, 65535, (4, 4), dtype=np.uint16)), "PNG"))
put("image", "baseline.jpg", img_bytes(rgb, "JPEG", quality=80))
put("image", "progressive.jpg", img_bytes(rgb, "JPEG", progressive=True))
put("image", "grey.jpg", img_bytes(rgb.convert("L"), "JPEG"))
put("image", "truncated.png", img_bytes(rgb, "PNG")[:40])

# prompt
for i, p in enumerate(["a red torus", "an orange cube, overhead view", "A  Gray  Sphere , side view", "a red pyramid", ""]):
    put("prompt", f"p{i}", p)

# metrics_csv
put("metrics_csv", "ok.csv", "step,loss,fid\n1,0.5,\n2,0.25,3\n")
put("metrics_csv", "ragged.csv", "step,loss\n1\n2,3,4\nx,y\n")

# model_metadata: the shipped weights' own descriptions (first byte: 0 UNet, 1 student, 2 classifier)
def meta(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        return json.loads(f.read(n)).get("__metadata__", {})
put("model_metadata", "unet", b"\x00" + meta(f"{root}/weights/fmnist-teacher.safetensors")["retort.unet"].encode())
put("model_metadata", "video-unet", b"\x00" + meta(f"{root}/weights/nvs-teacher.safetensors")["retort.unet"].encode())
put("model_metadata", "student", b"\x01" + meta(f"{root}/weights/fmnist-dmd2-4step.safetensors")["retort.student"].encode())
put("model_metadata", "classifier", b"\x02" + meta(f"{root}/weights/fmnist-evaluator.safetensors")["retort.classifier"].encode())
put("model_metadata", "not-json", b"\x00{\"widths\": [")

# world: tiny render-world and render-scenes files
with tempfile.TemporaryDirectory() as tmp:
    subprocess.run([retort, "render-world", "--config", f"{root}/configs/world.toml", "--out", f"{tmp}/w", "--no-progress",
                    "--set", "world.n=2", "--set", "world.resolution=8"], check=True, stdout=subprocess.DEVNULL)
    put("world", "world.safetensors", open(f"{tmp}/w/world.safetensors", "rb").read())
    subprocess.run([retort, "render-scenes", "--config", f"{root}/configs/scenes.toml", "--out", f"{tmp}/s", "--no-progress",
                    "--set", "scenes.train=1", "--set", "scenes.test=1", "--set", "scenes.resolution=8",
                    "--set", "scenes.frames=2", "--set", "scenes.views=1"], check=True, stdout=subprocess.DEVNULL)
    put("world", "scenes.safetensors", open(f"{tmp}/s/test.safetensors", "rb").read())
    # checkpoint: written by the target's own module and optimiser
    subprocess.run([replay, "--write-seeds", tmp], check=True)
    data = open(f"{tmp}/checkpoint/seed-made", "rb").read()
    put("checkpoint", "checkpoint.pt", data)
    put("checkpoint", "truncated.pt", data[: len(data) // 2])
put("checkpoint", "not-zip.pt", b"PK\x03\x04" + bytes(40))
print("corpus written:", ", ".join(f"{d} {len(os.listdir(os.path.join(corpus, d)))}" for d in sorted(os.listdir(corpus))))
