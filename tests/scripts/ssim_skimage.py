#!/usr/bin/python3
"""retort's PSNR and SSIM against scikit-image's on test images (`retort compare A B`).

Usage: ssim_skimage.py RETORT_BIN WORKDIR. Prints "ssim and psnr agree with scikit-image" when
every pair agrees to 1e-4 (SSIM) and 1e-6 dB (PSNR); exits 1 otherwise.
"""
import os
import subprocess
import sys

import numpy as np
from PIL import Image
from scipy.ndimage import gaussian_filter, shift
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

retort, work = sys.argv[1], sys.argv[2]
os.makedirs(work, exist_ok=True)
rng = np.random.default_rng(0)


def smooth_image(h, w):
    x = rng.random((h, w, 3))
    return np.clip(gaussian_filter(x, sigma=(2, 2, 0)) * 3 - 1, 0, 1)


def save(name, x):
    path = os.path.join(work, name)
    Image.fromarray((np.clip(x, 0, 1) * 255).round().astype(np.uint8)).save(path)
    return path


def load(path):
    return np.asarray(Image.open(path).convert("RGB"), dtype=np.float64) / 255.0


pairs = []
for h, w in [(32, 32), (11, 11), (40, 56)]:
    ref = smooth_image(h, w)
    variants = {
        "noise": ref + rng.normal(0, 0.1, ref.shape),
        "blur": gaussian_filter(ref, sigma=(1.5, 1.5, 0)),
        "shift": shift(ref, (1, 2, 0), mode="nearest"),
        "dark": ref * 0.5,
        "other": smooth_image(h, w),
    }
    r = save(f"ref-{h}x{w}.png", ref)
    for name, v in variants.items():
        pairs.append((save(f"{name}-{h}x{w}.png", v), r))

worst_ssim = worst_psnr = 0.0
for a, b in pairs:
    out = subprocess.run([retort, "compare", a, b], capture_output=True, text=True, check=True).stdout.split()
    ours_psnr, ours_ssim = float(out[1]), float(out[3])
    x, y = load(a), load(b)
    ref_ssim = structural_similarity(x, y, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                     data_range=1.0, channel_axis=-1)
    ref_psnr = peak_signal_noise_ratio(y, x, data_range=1.0)
    worst_ssim = max(worst_ssim, abs(ours_ssim - ref_ssim))
    worst_psnr = max(worst_psnr, abs(ours_psnr - ref_psnr))
    print(f"{os.path.basename(a):>16}: ssim {ours_ssim:.6f} vs {ref_ssim:.6f}, psnr {ours_psnr:.4f} vs {ref_psnr:.4f}")
print(f"largest differences: ssim {worst_ssim:.2e}, psnr {worst_psnr:.2e} dB")
if worst_ssim > 1e-4 or worst_psnr > 1e-6:
    sys.exit(1)
print("ssim and psnr agree with scikit-image")
