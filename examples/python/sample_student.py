"""(c) Sample a retort student exported to TorchScript, in plain PyTorch.

    python3 sample_student.py --model student.pt --out samples.pgm --save student.safetensors
    python3 sample_student.py --model student.pt --check samples/samples.safetensors
    python3 sample_student.py --model student.pt --teacher teacher.pt --save-start start.safetensors \
        --save-teacher teacher-ddim50.safetensors

The student's call is `sample(noise [B,1,8,8], cond [B] (the labels), renoise [K-1,B,1,8,8] or None)`.
--save writes its images (and labels) for `retort eval`; with --teacher, --save-start writes the
student's starting point (the teacher's network run as the same K-step chain) and --save-teacher
the teacher's own DDIM-50 samples, from the same labels. With --check, the student is called on
the noise `retort sample` drew and its images must equal retort's (max |difference| <= --tolerance).
"""
import argparse
import json
import sys

import torch

import tiny_diffusion as td


def initial_student(teacher, labels, timesteps, generator):
    """The K-step chain of the distilled student run with the teacher's own network (x0 from v)."""
    abar = td.alpha_bar().float()
    x = torch.randn(labels.size(0), 1, td.RESOLUTION, td.RESOLUTION, generator=generator)
    x0 = x
    for i, k in enumerate(timesteps):
        v = teacher(x, torch.full([x.size(0)], k, dtype=torch.long), labels)
        x0 = abar[k].sqrt() * x - (1 - abar[k]).sqrt() * v
        if i + 1 < len(timesteps):
            nb = abar[timesteps[i + 1]]
            x = nb.sqrt() * x0 + (1 - nb).sqrt() * torch.randn(x0.shape, generator=generator)
    return x0.clamp(-1, 1)


def teacher_ddim(teacher, labels, steps, generator):
    """The teacher's own samples: deterministic DDIM with `steps` steps (v prediction)."""
    abar = td.alpha_bar().float()
    ks = [td.STEPS - 1 - i * td.STEPS // steps for i in range(steps)]
    x = torch.randn(labels.size(0), 1, td.RESOLUTION, td.RESOLUTION, generator=generator)
    x0 = x
    for i, k in enumerate(ks):
        a, s = abar[k].sqrt(), (1 - abar[k]).sqrt()
        v = teacher(x, torch.full([x.size(0)], k, dtype=torch.long), labels)
        x0, eps = a * x - s * v, s * x + a * v
        if i + 1 < len(ks):
            nb = abar[ks[i + 1]]
            x = nb.sqrt() * x0 + (1 - nb).sqrt() * eps
    return x0.clamp(-1, 1)


def write_pgm_grid(images, path, columns=10):
    """A grey PGM grid of images [N,1,H,W] in [-1, 1] (no imaging library needed)."""
    n, _, h, w = images.shape
    rows = (n + columns - 1) // columns
    grid = torch.full((rows * h, columns * w), -1.0)
    for i in range(n):
        r, c = divmod(i, columns)
        grid[r * h:(r + 1) * h, c * w:(c + 1) * w] = images[i, 0]
    pixels = ((grid + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)
    with open(path, "wb") as f:
        f.write(f"P5 {grid.size(1)} {grid.size(0)} 255\n".encode() + bytes(pixels.flatten().tolist()))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="the exported student (retort export)")
    p.add_argument("--teacher", help="the TorchScript teacher it was distilled from: also score the starting point")
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="a PGM grid of the first 100 samples")
    p.add_argument("--save", help="the samples as safetensors (images, labels)")
    p.add_argument("--save-start", help="with --teacher: the starting point's samples")
    p.add_argument("--save-teacher", help="with --teacher: the teacher's DDIM-50 samples")
    p.add_argument("--check", help="samples.safetensors of `retort sample --model MODEL`: same images from its noise")
    p.add_argument("--tolerance", type=float, default=1e-4)
    a = p.parse_args()
    torch.set_grad_enabled(False)
    extra = {"retort.student": ""}
    student = torch.jit.load(a.model, _extra_files=extra)
    timesteps = json.loads(extra["retort.student"])["timesteps"]
    status = 0
    if a.check:
        s = td.read_safetensors(a.check)
        mine = student.sample(s["noise"][0], s["labels"], s["noise"][1:])
        diff = (mine - s["images"]).abs().max().item()
        ok = diff <= a.tolerance
        print(f"python vs retort, same noise: max |difference| {diff:.2e} over {mine.numel()} pixels "
              f"({'within' if ok else 'OVER'} {a.tolerance:g})")
        status |= 0 if ok else 1
    g = torch.Generator().manual_seed(a.seed)
    labels = torch.arange(a.n) % td.CLASSES
    noise = torch.randn(a.n, 1, td.RESOLUTION, td.RESOLUTION, generator=g)
    renoise = torch.randn(len(timesteps) - 1, a.n, 1, td.RESOLUTION, td.RESOLUTION, generator=g)
    images = student.sample(noise, labels, renoise)
    if a.out:
        write_pgm_grid(images[:100], a.out)
        print(f"wrote {a.out}")
    if a.save:
        td.write_safetensors(a.save, {"images": images, "labels": labels})
    if a.teacher:
        teacher = torch.jit.load(a.teacher)
        if a.save_start:
            td.write_safetensors(a.save_start, {"images": initial_student(teacher, labels, timesteps, g), "labels": labels})
        if a.save_teacher:
            td.write_safetensors(a.save_teacher, {"images": teacher_ddim(teacher, labels, 50, g), "labels": labels})
    sys.exit(status)


if __name__ == "__main__":
    main()
