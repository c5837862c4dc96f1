#!/usr/bin/env python3
"""One update of retort's DMD2 distillation in plain PyTorch, for the side-by-side with
`retort bench-step --workload dmd2-update` (bench/python_compare.sh). Code path for code path the
update of `retort distill` on configs/fmnist-dmd2-noreg.toml with `init` cleared (the student
starts from the teacher):
  * the generator: a K-step student (generators/few_step_student.cpp), x0 from its own backward
    simulation (a random number k of its steps from noise, without gradient, then one with);
  * its loss (distill/distribution_matching.cpp): DMD's gradient with the x0-normaliser, in
    inference mode, as a surrogate, plus gan_weight x the non-saturating GAN term (distill/gan.cpp);
  * AdamW with the halving rate, gradient clipping (train/distill_loop.cpp finalize_gradients),
    the student's moving average (train/ema.cpp);
  * critic_steps critic updates: fake-score denoising loss + disc_weight x the discriminator loss,
    the fake score a trainable copy of the teacher, the discriminator a head on its bottleneck
    features (models/feature_discriminator.cpp); the first update reuses the generator's x0, t
    and noise (share_noise); real images from Fashion-MNIST (image/image_distill.cpp).
Every random number comes from one seeded CPU generator drawn in retort's order (core/rng.cpp:
torch.Generator on the same LibTorch gives the same numbers).

  dmd2.py [--config configs/fmnist-dmd2-noreg.toml] [--set distill.batch=8 ...] [--steps 3] [--warmup 1]
          [--threads 1]
  dmd2.py --check DUMP   # DUMP from `retort bench-step --workload dmd2-update --dump DUMP`

A timed run prints one JSON line like the C++ command (ms_per_update: median of the timed updates,
timed from the generator's draw to the last critic step, as DistillLoopOptions::on_update).
--check starts from the dump's weights (the head's initialisation is retort's; the others must equal
the teacher), replays the dump's recorded draws (and counts those this generator drew otherwise),
recomputes the update and prints the largest differences of the weights of student, average, fake
score and head after it, and of the gradients it leaves (the student's, the last critic update's;
relative to each module's largest), and whether all are bit for bit; exit 1 when one exceeds --tol.
"""
import argparse
import copy
import gzip
import json
import math
import os
import statistics
import struct
import sys
import time

try:
    import tomllib  # Python 3.11
except ImportError:
    raise SystemExit("dmd2.py: needs Python >= 3.11 (tomllib reads the config)")

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import unet  # noqa: E402  (sets retort's BLAS thread policy before torch loads)
from unet import NULL_CLASS, load_model, load_safetensors, maxdiff, per_sample  # noqa: E402

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

DEFAULT_CONFIG = "configs/fmnist-dmd2-noreg.toml"

# retort's defaults for the keys a config may leave out (train/student_distill.h student_loop_defaults,
# the dmd2 preset of method_plan, distill/objective.h ObjectiveOptions, diffusion/timesteps.h TimeRange).
DISTILL_DEFAULTS = {
    "method": "dmd2", "student_steps": 4, "timesteps": [], "backward_simulation": True, "batch": 32,
    "critic_steps": 5, "share_noise": True, "lr": 1e-4, "critic_lr": 1e-4, "lr_half_life": 0.0,
    "weight_decay": 0.01, "critic_weight_decay": 0.01, "grad_clip": 10.0, "critic_grad_clip": 10.0,
    "t_min": 0.02, "t_max": 0.98, "anneal": "none", "cfg_scale": 1.0, "dmd_normalize": True,
    "gan_weight": 3e-3, "disc_weight": 1e-2, "r1_weight": 0.0, "regression_weight": 0.0, "ema": 0.0,
    "seed": 0, "fake": "copy", "disc_features": "bottleneck", "init": "",
}
DATA_DEFAULTS = {"source": "fashion-mnist", "dir": "/usr/share/datasets/fashion-mnist", "resolution": 0,
                 "train_limit": 0}
# What this twin implements; anything else is refused rather than silently timed differently.
REQUIRED = {("distill", "method"): "dmd2", ("distill", "fake"): "copy", ("distill", "disc_features"): "bottleneck",
            ("distill", "anneal"): "none", ("distill", "r1_weight"): 0.0, ("distill", "regression_weight"): 0.0,
            ("distill", "init"): "", ("data", "source"): "fashion-mnist", ("distill", "dmd_normalize"): True}


def fail(msg):
    raise SystemExit(f"dmd2.py: {msg}")


# ---------------------------------------------------------------- config

def read_config(text, sets, where):
    try:
        root = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        fail(f"{where}: {e}")
    # As bench-step: the timed student starts from the teacher (before --set, which may say otherwise
    # and is then refused below).
    root.setdefault("distill", {})["init"] = ""
    for s in sets:
        key, eq, value = s.partition("=")
        if not eq or "." not in key:
            fail(f"--set {s}: expected TABLE.KEY=VALUE")
        table, name = key.split(".", 1)
        try:
            root.setdefault(table, {})[name] = tomllib.loads(f"v = {value}")["v"]
        except tomllib.TOMLDecodeError:
            fail(f"--set {s}: the value is not TOML (strings are quoted: distill.init=\"\")")
    c = {"teacher": root.get("teacher", "weights/fmnist-teacher.safetensors")}
    for table, defaults in (("distill", DISTILL_DEFAULTS), ("data", DATA_DEFAULTS)):
        got = root.get(table, {})
        c[table] = {**defaults, **got}
    for (table, key), want in REQUIRED.items():
        if c[table][key] != want:
            fail(f"{where}: {table}.{key} = {c[table][key]!r}: this twin implements {want!r} only")
    return c


# ---------------------------------------------------------------- randomness (core/rng.cpp)

class Rng:
    """retort's Rng: every draw from one seeded CPU generator. Given `replay` (a dump's draws, in
    order), each draw returns the recorded tensor instead, after checking kind and shape, and notes
    whether this generator drew the same."""

    def __init__(self, seed, replay=None):
        self.gen = torch.Generator().manual_seed(seed)
        self.replay, self.i, self.own_mismatches = replay, 0, 0

    def _next(self, kind, own):
        if self.replay is None:
            return own
        if self.i >= len(self.replay):
            fail(f"the update drew more than the dump's {len(self.replay)} draws")
        k, t = self.replay[self.i]
        if k != kind or tuple(t.shape) != tuple(own.shape):
            fail(f"draw {self.i}: the dump holds {k} {list(t.shape)}, this update drew {kind} {list(own.shape)}")
        if not torch.equal(t, own):
            self.own_mismatches += 1
        self.i += 1
        return t

    def randn(self, shape):
        return self._next("randn", torch.randn(shape, generator=self.gen))

    def rand(self, shape):
        return self._next("rand", torch.rand(shape, generator=self.gen))

    def randint(self, low, high, shape):
        return self._next("randint", torch.randint(low, high, shape, generator=self.gen))


# ---------------------------------------------------------------- data (data/idx.cpp, image/dataset_config.cpp)

def read_idx(path):
    with gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb") as f:
        b = f.read()
    if len(b) < 4 or b[0] != 0 or b[1] != 0 or b[2] != 0x08:
        fail(f"{path}: not an IDX ubyte file")
    n = b[3]
    dims = struct.unpack(f">{n}I", b[4:4 + 4 * n])
    return torch.frombuffer(bytearray(b[4 + 4 * n:]), dtype=torch.uint8).reshape(dims)


def load_fashion_mnist(data):
    def find(stem):
        for name in (stem + ".gz", stem):
            p = os.path.join(data["dir"], name)
            if os.path.isfile(p):
                return p
        fail(f"{os.path.join(data['dir'], stem)}.gz: missing (Debian: apt-get install dataset-fashion-mnist)")
    x = read_idx(find("train-images-idx3-ubyte"))
    y = read_idx(find("train-labels-idx1-ubyte"))
    images = x.unsqueeze(1).to(torch.float32).div_(127.5).sub_(1.0)
    labels = y.to(torch.int64)
    if data["train_limit"] > 0:
        images, labels = images[:data["train_limit"]].contiguous(), labels[:data["train_limit"]].contiguous()
    r = data["resolution"]
    if r > 0 and images.shape[2] != r:  # area averaging, as retort
        images = F.interpolate(images, size=(r, r), mode="area").contiguous()
    return images, labels


# ---------------------------------------------------------------- models

def x0_of(model, xt, t, labels):
    """DiffusionModel::x0 for the teacher's v (or eps) prediction."""
    out = model.net(xt, t, labels)
    abar = model.schedule.alpha_bar(t).to(xt.dtype)
    alpha, sigma = abar.sqrt(), (1 - abar).clamp_min(0).sqrt()
    if model.prediction == "x0":
        return out
    if model.prediction == "v":
        return per_sample(alpha, xt) * xt - per_sample(sigma, xt) * out
    return (xt - per_sample(sigma, xt) * out) / per_sample(alpha, xt)


def encode(net, x, t, labels):
    """UNet::encode: the bottleneck features (the encoder and the middle blocks)."""
    emb = net.embed(t, labels, x.shape[0])
    h, i = net.in_conv(x), 0
    for l in range(net.L):
        for _ in range(net.blocks):
            h = net.down_blocks[i](h, emb)
            i += 1
        if l + 1 < net.L:
            h = net.downsamples[l](h)
    h = net.mid1(h, emb)
    if net.mid_attn is not None:
        h = net.mid_attn(h)
    return net.mid2(h, emb)


class FeatureDiscriminator(nn.Module):
    """DMD2's head on the fake score's bottleneck: [conv 4x4 stride 2, GroupNorm, SiLU] down to 1x1,
    then a 1x1 conv to a logit. Only the head is registered (parameter names as retort's)."""

    def __init__(self, backbone, groups=8):
        super().__init__()
        self.backbone = [backbone]  # held, not registered
        net = backbone.net
        with torch.no_grad():
            C, r = encode(net, torch.zeros((1,) + backbone.shape), torch.full((1,), 0.5),
                          torch.zeros(1, dtype=torch.int64) if net.num_classes > 0 else None).shape[1:3]
        layers = []
        while r > 1:
            layers += [nn.Conv2d(C, C, 4, stride=2, padding=1), nn.GroupNorm(min(groups, C), C), nn.SiLU()]
            r //= 2
        layers.append(nn.Conv2d(C, 1, 1))
        self.heads = nn.ModuleList([nn.Sequential(*layers)])

    def part_logits(self, xt, t, labels):
        l = self.heads[0](encode(self.backbone[0].net, xt, t, labels)).squeeze(1)
        return [l.reshape(l.shape[0], -1).mean(1)]


def mean_part_logit(parts):
    l = parts[0].reshape(parts[0].shape[0], -1).mean(1)
    for p in parts[1:]:
        l = l + p.reshape(p.shape[0], -1).mean(1)
    return l / float(len(parts))


# ---------------------------------------------------------------- the update

class Dmd2:
    def __init__(self, c):
        d = c["distill"]
        self.d = d
        if not os.path.isfile(c["teacher"]):
            fail(f"teacher {c['teacher']}: no such file (run from the repository root)")
        self.teacher, _, _ = load_model(c["teacher"])
        self.teacher.requires_grad_(False).eval()
        self.schedule = self.teacher.schedule
        T = self.schedule.T
        self.timesteps = d["timesteps"] or [T - 1 - i * T // d["student_steps"] for i in range(d["student_steps"])]
        if d["cfg_scale"] != 1.0 and self.teacher.num_classes == 0:
            fail(f"distill.cfg_scale = {d['cfg_scale']}: {c['teacher']} is unconditional")
        torch.manual_seed(d["seed"])  # the head's initialisation (a timed run's; --check loads retort's)
        self.student = copy.deepcopy(self.teacher).requires_grad_(True).train()
        self.fake = copy.deepcopy(self.teacher).requires_grad_(True).train()
        self.disc = FeatureDiscriminator(self.fake)
        self.average = copy.deepcopy(self.student).requires_grad_(False) if d["ema"] > 0 else None
        images, labels = load_fashion_mnist(c["data"])
        if tuple(images.shape[1:]) != self.teacher.shape:
            fail(f"data: images are {tuple(images.shape[1:])} but the teacher takes {self.teacher.shape}")
        self.images = images
        self.labels = labels if self.teacher.num_classes > 0 else None
        self.gen_params = list(self.student.parameters())
        self.critic_params = list(self.fake.parameters()) + list(self.disc.parameters())
        self.gen_opt = torch.optim.AdamW(self.gen_params, lr=d["lr"], betas=(0.9, 0.999),
                                         weight_decay=d["weight_decay"])
        self.critic_opt = torch.optim.AdamW(self.critic_params, lr=d["critic_lr"], betas=(0.9, 0.999),
                                            weight_decay=d["critic_weight_decay"])
        self.step = 0
        self.stats = {}

    # -- generator (few_step_student.cpp)
    def time(self, i, batch):
        return torch.full((batch,), (self.timesteps[i] + 1) / self.schedule.T, dtype=torch.float32)

    def draw(self, batch, rng):
        C = self.teacher.num_classes
        labels = rng.randint(0, C, (batch,)) if C > 0 else torch.full((batch,), NULL_CLASS)
        x = rng.randn((batch,) + self.teacher.shape)
        K = len(self.timesteps)
        k = rng.randint(0, K, (1,)).item() if self.d["backward_simulation"] else 0
        with torch.no_grad():
            for i in range(k):
                x0 = x0_of(self.student, x, self.time(i, batch), labels)
                abar = self.schedule.alpha_bar(self.time(i + 1, batch)).to(x.dtype)
                eps = rng.randn(x0.shape)
                x = per_sample(abar.sqrt(), x0) * x0 + per_sample((1 - abar).sqrt(), x0) * eps
        return x0_of(self.student, x, self.time(k, batch), labels), labels

    def draw_noise(self, x0, rng):
        lo, hi = self.d["t_min"], max(self.d["t_min"], self.d["t_max"])
        t = lo + (hi - lo) * rng.rand((x0.shape[0],))
        T = float(self.schedule.T)
        t = ((t * T).ceil().clamp(1, T) / T).to(t.dtype)  # Schedule::snap
        return t, rng.randn(x0.shape)

    def noisy(self, x0, t, eps):
        abar = self.schedule.alpha_bar(t)
        a, s = abar.sqrt(), (1 - abar).sqrt()
        return per_sample(a, x0) * x0 + per_sample(s, x0) * eps, a, s

    def eps_real(self, xt, t, labels):
        return unet.eps_cfg(self.teacher, xt, t, labels, self.d["cfg_scale"])

    # -- DMD2's generator loss (distribution_matching.cpp, objective.cpp, gan.cpp)
    def generator_loss(self, x0, labels, t, eps):
        with torch.inference_mode():
            x0d = x0.detach()
            xt, alpha, sigma = self.noisy(x0d, t, eps)
            e_real = self.eps_real(xt, t, labels)
            e_fake = self.fake.eps(xt, t, labels)
            x0_real = (xt - per_sample(sigma, xt) * e_real) / per_sample(alpha, xt)
            x0_fake = (xt - per_sample(sigma, xt) * e_fake) / per_sample(alpha, xt)
            norm = (x0d - x0_real).abs().flatten(1).mean(1).clamp_min(1e-8)
            grad = (x0_fake - x0_real) / per_sample(norm, x0d)
        self.stats["grad_norm"] = grad.flatten(1).norm(2, 1).mean().item()
        loss = 0.5 * (x0 - (x0 - grad).detach()).pow(2).mean()
        fake_logits = self.disc.part_logits(self.noisy(x0, t, eps)[0], t, labels)
        gan = F.softplus(-fake_logits[0]).mean() / float(len(fake_logits))
        self.stats["gan_g"] = gan.item()
        return loss + self.d["gan_weight"] * gan

    # -- one critic update (distill_loop.cpp critic_update, DistributionMatching::critic_loss)
    def critic_update(self, shared, k, rng):
        B = self.d["batch"]
        if k == 0 and self.d["share_noise"]:
            x0, labels, (t, eps) = shared[0].detach(), shared[1], shared[2]
        else:
            with torch.no_grad():
                x0, labels = self.draw(B, rng)
            x0 = x0.detach()
            t, eps = self.draw_noise(x0, rng)
        idx = rng.randint(0, self.images.shape[0], (x0.shape[0],))
        real_x0 = self.images.index_select(0, idx)
        real_labels = self.labels.index_select(0, idx) if self.labels is not None else torch.full((x0.shape[0],), NULL_CLASS)
        real_t, real_eps = self.draw_noise(real_x0, rng)
        loss = (self.fake.eps(self.noisy(x0, t, eps)[0], t, labels) - eps).pow(2).mean()
        self.stats["fake_dsm"] = loss.item()
        real = self.disc.part_logits(self.noisy(real_x0, real_t, real_eps)[0], real_t, real_labels)
        fake = self.disc.part_logits(self.noisy(x0, t, eps)[0], t, labels)
        d = (F.softplus(-real[0]).mean() + F.softplus(fake[0]).mean()) / float(len(real))
        with torch.no_grad():
            lr_, lf = mean_part_logit(real), mean_part_logit(fake)
            self.stats["logit_real"] = lr_.mean().item()
            self.stats["logit_fake"] = lf.mean().item()
            self.stats["disc_accuracy"] = 0.5 * ((lr_ > 0).float().mean() + (lf < 0).float().mean()).item()
        self.stats["disc"] = d.item()
        loss = loss + self.d["disc_weight"] * d
        value = loss.item()
        if not math.isfinite(value):
            return
        self.critic_opt.zero_grad()
        loss.backward()
        norm = clip(self.critic_params, self.d["critic_grad_clip"])
        if not math.isfinite(norm):
            return
        set_lr(self.critic_opt, self.d["critic_lr"])  # no half-life for the critic
        self.critic_opt.step()
        self.stats["critic_loss"], self.stats["critic_grad_norm"] = value, norm

    # -- one update (DistillLoop::run's loop body)
    def update(self, rng):
        B = self.d["batch"]
        x0, labels = self.draw(B, rng)
        t, eps = self.draw_noise(x0, rng)
        gen_loss = self.generator_loss(x0, labels, t, eps)
        gl = gen_loss.item()
        if math.isfinite(gl):
            self.gen_opt.zero_grad()
            gen_loss.backward()
            gnorm = clip(self.gen_params, self.d["grad_clip"])
            if math.isfinite(gnorm):
                hl = self.d["lr_half_life"]
                set_lr(self.gen_opt, self.d["lr"] * 0.5 ** (self.step / hl) if hl > 0 else self.d["lr"])
                self.gen_opt.step()
                if self.average is not None:
                    decay = min(self.d["ema"], (self.step + 1) / (self.step + 10))
                    with torch.no_grad():
                        for pe, p in zip(self.average.parameters(), self.student.parameters()):
                            pe.mul_(decay).add_(p, alpha=1 - decay)
                for k in range(self.d["critic_steps"]):
                    self.critic_update((x0, labels, (t, eps)), k, rng)
        self.step += 1
        return gl


def clip(params, max_norm):
    """finalize_gradients: the global norm before clipping (0 = no clipping)."""
    if max_norm > 0:
        return torch.nn.utils.clip_grad_norm_(params, max_norm).item()
    return torch.stack([p.grad.norm() for p in params if p.grad is not None]).norm().item()


def set_lr(opt, lr):
    for g in opt.param_groups:
        g["lr"] = lr


# ---------------------------------------------------------------- timed run

def timed(a):
    if not os.path.isfile(a.config):
        fail(f"--config {a.config}: no such file (run from the repository root)")
    with open(a.config, "rb") as f:
        c = read_config(f.read().decode(), a.set, a.config)
    m = Dmd2(c)
    rng = Rng(c["distill"]["seed"])
    ms = []
    for i in range(a.warmup + a.steps):
        t0 = time.perf_counter()
        m.update(rng)
        if i >= a.warmup:
            ms.append(1000 * (time.perf_counter() - t0))
    d = c["distill"]
    return {"impl": "pytorch", "workload": "dmd2-update", "config": a.config, "sets": a.set,
            "method": d["method"], "batch": d["batch"], "critic_steps": d["critic_steps"],
            "student_steps": len(m.timesteps), "fake": d["fake"], "teacher": c["teacher"],
            "ms_per_update": statistics.median(ms), "ms_min": min(ms), "ms_max": max(ms), "updates": a.steps,
            "warmup": a.warmup, "threads": torch.get_num_threads(), "torch": torch.__version__}


# ---------------------------------------------------------------- --check

def check(path, tol):
    if not os.path.isfile(path):
        fail(f"--check {path}: no such file")
    try:
        tensors, meta = load_safetensors(path)
    except (ValueError, KeyError, MemoryError, struct.error) as e:
        fail(f"--check {path}: not a safetensors file ({type(e).__name__})")
    if meta.get("bench.workload") != "dmd2-update":
        fail(f"{path}: not a dmd2-update dump (write one with retort bench-step --workload dmd2-update --dump)")
    c = read_config(meta["bench.config"], [], f"{path}: bench.config")
    kinds = json.loads(meta["bench.draws"])
    replay = [(k, tensors[f"draw.{i:04d}"]) for i, k in enumerate(kinds)]
    m = Dmd2(c)
    modules = {"generator": m.student, "fake": m.fake, "disc": m.disc}
    if m.average is not None:
        modules["generator_ema"] = m.average
    order = json.loads(meta["bench.params"])

    def key(name, k):  # retort's student is FewStepStudent{net: the denoiser}: one "net." more
        return k[len("net."):] if name.startswith("generator") else k

    diffs, start = {}, {}
    for name, mod in modules.items():
        if name not in order:
            fail(f"{path}: holds no module '{name}'")
        mine = [n for n, _ in mod.named_parameters()]
        theirs = [key(name, k) for k in order[name]]
        if mine != theirs:
            fail(f"{name}: parameter order differs from retort's (gradient clipping sums in it)")
        sd = {n: tensors[f"start.{name}.{k}"] for n, k in zip(mine, order[name])}
        start[name] = max(maxdiff(p, sd[n]) for n, p in mod.named_parameters())
        with torch.no_grad():
            for n, p in mod.named_parameters():
                p.copy_(sd[n])  # the head's start is retort's; the others must already agree
    rng = Rng(c["distill"]["seed"], replay)
    m.update(rng)
    if rng.i != len(replay):
        fail(f"the update drew {rng.i} of the dump's {len(replay)} draws")
    moved, grads, identical = {}, {}, True
    for name, mod in modules.items():
        pairs = list(zip((p for _, p in mod.named_parameters()), order[name]))
        diffs[name] = max(maxdiff(p, tensors[f"after.{name}.{k}"]) for p, k in pairs)
        moved[name] = max(maxdiff(p, tensors[f"start.{name}.{k}"]) for p, k in pairs)
        identical = identical and all(torch.equal(p, tensors[f"after.{name}.{k}"]) for p, k in pairs)
        theirs = [(p.grad, tensors.get(f"grad.{name}.{k}")) for p, k in pairs]
        if any((g is None) != (t is None) for g, t in theirs):
            fail(f"{name}: gradients left by the update differ in which parameters have one")
        theirs = [(g, t) for g, t in theirs if t is not None]
        if theirs:  # relative to the module's largest gradient component
            scale = max(t.abs().max().item() for _, t in theirs) or 1.0
            grads[name] = max(maxdiff(g, t) for g, t in theirs) / scale
            identical = identical and all(torch.equal(g, t) for g, t in theirs)
    ok = (all(v <= tol for v in diffs.values()) and all(v <= tol for v in grads.values())
          and all(v == 0 for k, v in start.items() if k != "disc"))
    print(json.dumps({"check": "dmd2-update", "ok": ok, "bit_identical": identical,
                      "max_abs_diff_weights_after": diffs, "max_rel_diff_gradients_after": grads,
                      "weights_moved_by": moved,
                      "max_abs_diff_start_vs_teacher": {k: v for k, v in start.items() if k != "disc"},
                      "draws": len(replay), "draws_this_generator_differs": rng.own_mismatches,
                      "batch": c["distill"]["batch"], "critic_steps": c["distill"]["critic_steps"], "tol": tol}))
    return 0 if ok else 1


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--config", default=DEFAULT_CONFIG)
    p.add_argument("--set", action="append", default=[], metavar="TABLE.KEY=VALUE",
                   help="override a config key, as bench-step's --set (repeatable)")
    p.add_argument("--steps", type=int, default=3, help="timed updates (bench-step's default for dmd2-update)")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--workload", choices=["dmd2-update"], default="dmd2-update", help="for bench-step's flags")
    p.add_argument("--threads", type=int, default=1, help="intra-op threads, as retort's runtime.threads (0 = all)")
    p.add_argument("--check", metavar="DUMP", help="recompute a `bench-step --workload dmd2-update --dump` file")
    p.add_argument("--tol", type=float, default=1e-5)
    a = p.parse_args()
    if a.steps < 1 or a.warmup < 0:
        fail("--steps must be >= 1 and --warmup >= 0")
    torch.set_num_threads(a.threads if a.threads > 0 else os.cpu_count())
    torch.set_num_interop_threads(1)
    if a.check:
        sys.exit(check(a.check, a.tol))
    print(json.dumps(timed(a)))


if __name__ == "__main__":
    main()
