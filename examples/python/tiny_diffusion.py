"""A small class-conditional diffusion model of 8x8 Fashion-MNIST in plain PyTorch, written the way
retort takes a user's model: a TorchScript module with

    forward(x_t, t, cond) -> v            (t: int64 step 0..T-1, cond: int64 class, 10 = no class)
    features(x_t, t, cond) -> List[Tensor]  (encoder features, bottleneck last: for GAN heads)

saved with the extra file "retort.json" that says so. Also: the DDPM linear schedule (retort's
"linear"), the data from Debian's dataset-fashion-mnist and a tiny safetensors reader and writer.
Nothing here but Python's standard library and torch (Debian's python3-torch).
"""
import gzip
import json
import math
import struct
from typing import List

import torch
import torch.nn as nn
import torch.nn.functional as F

STEPS = 1000            # T of the schedule
CLASSES = 10
NULL_CLASS = CLASSES    # the label of "no condition" (classifier-free guidance)
RESOLUTION = 8

# How retort calls the model (retort's README, "Distil your own PyTorch model").
CONTRACT = {
    "prediction": "v",      # v = alpha eps - sigma x0: x0 = alpha x_t - sigma v stays exact at t = 1
    "time": "discrete",
    "schedule": "linear",
    "schedule_steps": STEPS,
    "channels": 1,
    "resolution": RESOLUTION,
    "num_classes": CLASSES,
    "null_class": NULL_CLASS,
    "method": "forward",
    "features": "features",
}


def alpha_bar() -> torch.Tensor:
    """DDPM's linear schedule: beta from 1e-4 to 2e-2 over T steps; alpha_bar of step k (float64)."""
    betas = torch.linspace(1e-4, 2e-2, STEPS, dtype=torch.float64)
    return torch.cumprod(1 - betas, 0)


class Block(nn.Module):
    def __init__(self, cin: int, cout: int, emb: int):
        super().__init__()
        self.norm1 = nn.GroupNorm(4, cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.emb = nn.Linear(emb, cout)
        self.norm2 = nn.GroupNorm(4, cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x))) + self.emb(emb)[:, :, None, None]
        return self.skip(x) + self.conv2(F.silu(self.norm2(h)))


class TinyDenoiser(nn.Module):
    def __init__(self, width: int = 32, emb: int = 64):
        super().__init__()
        self.emb_dim = emb
        self.time = nn.Sequential(nn.Linear(emb, emb), nn.SiLU(), nn.Linear(emb, emb))
        self.label = nn.Embedding(CLASSES + 1, emb)
        self.inp = nn.Conv2d(1, width, 3, padding=1)
        self.down_block = Block(width, width, emb)
        self.down = nn.Conv2d(width, 2 * width, 3, stride=2, padding=1)
        self.mid = Block(2 * width, 2 * width, emb)
        self.up = nn.ConvTranspose2d(2 * width, width, 4, stride=2, padding=1)
        self.up_block = Block(2 * width, width, emb)
        self.out = nn.Sequential(nn.GroupNorm(4, width), nn.SiLU(), nn.Conv2d(width, 1, 3, padding=1))

    def embed(self, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        half = self.emb_dim // 2
        freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
        a = t.to(torch.float32)[:, None] * freqs[None, :]
        return self.time(torch.cat([a.sin(), a.cos()], 1)) + self.label(cond)

    def forward(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        e = self.embed(t, cond)
        h = self.down_block(self.inp(x), e)
        m = self.mid(self.down(h), e)
        return self.out(self.up_block(torch.cat([self.up(m), h], 1), e))

    @torch.jit.export
    def features(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> List[torch.Tensor]:
        e = self.embed(t, cond)
        h = self.down_block(self.inp(x), e)
        return [h, self.mid(self.down(h), e)]


def save_for_retort(model: nn.Module, path: str) -> None:
    scripted = torch.jit.script(model.eval())
    torch.jit.save(scripted, path, _extra_files={"retort.json": json.dumps(CONTRACT)})


def fashion_mnist(split: str = "train", folder: str = "/usr/share/datasets/fashion-mnist"):
    """Images [N,1,8,8] in [-1,1] (28 px area-averaged to 8, as retort's data.resolution does) and labels."""
    prefix = "train" if split == "train" else "t10k"
    with gzip.open(f"{folder}/{prefix}-images-idx3-ubyte.gz") as f:
        _, n, h, w = struct.unpack(">IIII", f.read(16))
        images = torch.frombuffer(bytearray(f.read()), dtype=torch.uint8).reshape(n, 1, h, w)
    with gzip.open(f"{folder}/{prefix}-labels-idx1-ubyte.gz") as f:
        f.read(8)
        labels = torch.frombuffer(bytearray(f.read()), dtype=torch.uint8).to(torch.int64)
    x = F.interpolate(images.float() / 127.5 - 1, size=(RESOLUTION, RESOLUTION), mode="area")
    return x, labels


def write_safetensors(path: str, tensors) -> None:
    """{name: tensor} as a safetensors file (what `retort eval --images` reads)."""
    names = {torch.float32: "F32", torch.int64: "I64"}
    header, blobs, offset = {}, [], 0
    for name, t in tensors.items():
        data = t.contiguous().numpy().tobytes()
        header[name] = {"dtype": names[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def read_safetensors(path: str):
    """{name: tensor} of a safetensors file (float32 / int64 tensors, as retort writes them)."""
    dtypes = {"F32": torch.float32, "I64": torch.int64, "F64": torch.float64, "U8": torch.uint8}
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        t = torch.frombuffer(bytearray(data[a:b]), dtype=dtypes[info["dtype"]]) if b > a else torch.empty(0)
        out[name] = t.reshape(info["shape"])
    return out
