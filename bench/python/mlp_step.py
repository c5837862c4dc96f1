#!/usr/bin/env python3
"""One training step of retort's MLP denoiser, written in PyTorch, for the speed comparison with
`retort bench-step`. Same architecture (models/mlp.cpp), loss (mean squared eps error), optimiser
(AdamW, lr 1e-3, no weight decay), fixed data, thread policy and step counts.
Prints one JSON line like the C++ command."""
import argparse
import json
import math
import time

import torch
import torch.nn.functional as F


def time_features(t, dim):
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32) / half)
    args = (t * 1000).unsqueeze(1) * freqs.unsqueeze(0)
    return torch.cat([args.sin(), args.cos()], 1)


class MlpDenoiser(torch.nn.Module):
    def __init__(self, dim, hidden, blocks, time_dim=64):
        super().__init__()
        self.time_dim = time_dim
        self.time_proj = torch.nn.Linear(time_dim, hidden)
        self.in_proj = torch.nn.Linear(dim, hidden)
        self.block_in = torch.nn.ModuleList([torch.nn.Linear(hidden, hidden) for _ in range(blocks)])
        self.block_time = torch.nn.ModuleList([torch.nn.Linear(hidden, hidden) for _ in range(blocks)])
        self.block_out = torch.nn.ModuleList([torch.nn.Linear(hidden, hidden) for _ in range(blocks)])
        self.out_proj = torch.nn.Linear(hidden, dim)

    def forward(self, x, t):
        emb = F.silu(self.time_proj(time_features(t, self.time_dim)))
        h = self.in_proj(x)
        for lin_in, lin_t, lin_out in zip(self.block_in, self.block_time, self.block_out):
            u = lin_in(F.silu(h)) + lin_t(emb)
            h = h + lin_out(F.silu(u))
        return self.out_proj(F.silu(h))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--dim", type=int, default=2)
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--blocks", type=int, default=2)
    p.add_argument("--steps", type=int, default=500)
    p.add_argument("--warmup", type=int, default=50)
    p.add_argument("--threads", type=int, default=0)
    a = p.parse_args()
    import os
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    else:
        torch.set_num_threads(os.cpu_count())
    torch.manual_seed(0)
    net = MlpDenoiser(a.dim, a.hidden, a.blocks)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=0.0)
    x0 = torch.randn(a.batch, a.dim)
    t = torch.rand(a.batch) * 0.98 + 0.02
    betas = torch.linspace(1e-4, 2e-2, 1000, dtype=torch.float64)
    abar = torch.cumprod(1 - betas, 0)[(t * 1000).ceil().long().clamp(1, 1000) - 1].float()
    eps = torch.randn(a.batch, a.dim)
    xt = abar.sqrt().unsqueeze(1) * x0 + (1 - abar).sqrt().unsqueeze(1) * eps

    def step():
        opt.zero_grad()
        loss = (net(xt, t) - eps).pow(2).mean()
        loss.backward()
        opt.step()

    for _ in range(a.warmup):
        step()
    t0 = time.perf_counter()
    for _ in range(a.steps):
        step()
    s = time.perf_counter() - t0
    print(json.dumps({"impl": "pytorch", "ms_per_step": 1000 * s / a.steps, "batch": a.batch, "dim": a.dim,
                      "hidden": a.hidden, "blocks": a.blocks, "steps": a.steps,
                      "torch": torch.__version__, "threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main()
