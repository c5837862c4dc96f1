#!/usr/bin/env python3
"""Batch-1 3x3 convolutions: ATen's default path against oneDNN, forward and forward + backward.

ATen (1.13) sends a batch-1 3x3 conv with at most 20 480 input values to its reference
implementation (slow_conv2d) instead of oneDNN; generate3d's frozen teacher and ASD's phi run at
batch 1. This prints, per shape, microseconds per call of both paths on one thread (alternated,
median of --rounds), their ratio, and the largest difference, so a change to retort's conv path can
be decided on measurement.

  conv_batch1.py [--rounds 5] [--calls 100] [--threads 1]
"""
import argparse
import statistics
import time

import torch

SHAPES = [(32, 16), (64, 8), (64, 16), (128, 8), (32, 32)]  # (channels, side); 32x32x32 is above the cut


def per_call_us(f, calls):
    for _ in range(5):
        f()
    start = time.perf_counter()
    for _ in range(calls):
        f()
    return (time.perf_counter() - start) / calls * 1e6


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--calls", type=int, default=100)
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    print("| C x H x W | pass | ATen default (us) | oneDNN (us) | default / oneDNN | max abs diff |")
    print("|---|---|---|---|---|---|")
    for c, side in SHAPES:
        x = torch.randn(1, c, side, side, requires_grad=True)
        w = torch.randn(c, c, 3, 3, requires_grad=True)
        b = torch.randn(c, requires_grad=True)
        default = lambda: torch.nn.functional.conv2d(x, w, b, padding=1)
        onednn = lambda: torch.ops.aten.mkldnn_convolution(x, w, b, [1, 1], [1, 1], [1, 1], 1)
        for name in ("forward", "forward + backward"):
            def run(conv):
                if name == "forward":
                    with torch.no_grad():
                        return conv()
                out = conv()
                out.sum().backward()
                return out
            times = {"default": [], "onednn": []}
            for _ in range(a.rounds):  # alternated, so both see the same machine load
                times["default"].append(per_call_us(lambda: run(default), a.calls))
                times["onednn"].append(per_call_us(lambda: run(onednn), a.calls))
            with torch.no_grad():
                diff = (default() - onednn()).abs().max().item()
            d, o = statistics.median(times["default"]), statistics.median(times["onednn"])
            print(f"| {c} x {side} x {side} | {name} | {d:.0f} | {o:.0f} | {d / o:.2f}x | {diff:.1e} |")


if __name__ == "__main__":
    main()
