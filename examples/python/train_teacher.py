"""(a) Train the tiny diffusion model in plain PyTorch and save it as a TorchScript teacher for retort.

    python3 train_teacher.py --steps 3000 --out teacher.pt
"""
import argparse
import time

import torch
import torch.nn.functional as F

import tiny_diffusion as td


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--width", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="teacher.pt")
    a = p.parse_args()
    torch.manual_seed(a.seed)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    x, labels = td.fashion_mnist("train")
    abar = td.alpha_bar().float()
    model = td.TinyDenoiser(width=a.width)
    opt = torch.optim.Adam(model.parameters(), lr=a.lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, a.lr, total_steps=a.steps, pct_start=0.05)
    t0 = time.time()
    for step in range(1, a.steps + 1):
        idx = torch.randint(0, x.size(0), (a.batch,))
        x0, c = x[idx], labels[idx]
        c = torch.where(torch.rand(a.batch) < 0.1, torch.full_like(c, td.NULL_CLASS), c)  # CFG dropout
        k = torch.randint(0, td.STEPS, (a.batch,))
        eps = torch.randn_like(x0)
        ab = abar[k][:, None, None, None]
        xt = ab.sqrt() * x0 + (1 - ab).sqrt() * eps
        loss = F.mse_loss(model(xt, k, c), ab.sqrt() * eps - (1 - ab).sqrt() * x0)  # v prediction
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if step % max(1, a.steps // 10) == 0 or step == a.steps:
            print(f"step {step}/{a.steps}: loss {loss.item():.4f} ({time.time() - t0:.1f} s)", flush=True)
    td.save_for_retort(model, a.out)
    print(f"wrote {a.out} ({sum(p.numel() for p in model.parameters())} parameters, {time.time() - t0:.1f} s)")


if __name__ == "__main__":
    main()
