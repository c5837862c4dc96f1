#!/usr/bin/env python3
"""Largest element-wise difference between two safetensors files of the same tensors.

Usage: weights_diff.py A B TOL    exit 0 when every tensor matches within TOL (absolute, plus TOL
relative to the tensor's largest magnitude), 1 otherwise. Reads the format directly (8-byte header
length, JSON header, raw little-endian data), so it needs only NumPy.
"""
import json
import struct
import sys

import numpy as np

DTYPES = {"F32": np.float32, "F64": np.float64, "F16": np.float16, "I64": np.int64, "I32": np.int32,
          "U8": np.uint8, "BOOL": np.bool_}


def read(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        out[name] = np.frombuffer(data[a:b], dtype=DTYPES[info["dtype"]]).reshape(info["shape"])
    return out


def main():
    a, b, tol = read(sys.argv[1]), read(sys.argv[2]), float(sys.argv[3])
    if sorted(a) != sorted(b):
        print("different tensor names")
        return 1
    worst, worst_name, bad = 0.0, "", False
    for name in a:
        x, y = a[name].astype(np.float64), b[name].astype(np.float64)
        if x.shape != y.shape:
            print(f"{name}: shapes {x.shape} and {y.shape}")
            return 1
        d = float(np.abs(x - y).max()) if x.size else 0.0
        scale = float(np.abs(x).max()) if x.size else 0.0
        if d > worst:
            worst, worst_name = d, name
        bad = bad or d > tol * (1 + scale)
    print(f"max |a - b| = {worst:.3g} ({worst_name}) over {len(a)} tensors, tolerance {tol:g}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
