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
from unet import NULL_CLASS, Rng, clip, compare_after, load_model, load_safetensors, maxdiff, per_sample, set_lr  # noqa: E402

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

def read_config(text, sets, where, tables=None, required=None, teacher="weights/fmnist-teacher.safetensors",
                force_init=True, prog="dmd2.py"):
    """The config as retort reads it: `tables` {table: its defaults} (dmd2's [distill] and [data] when
    None), each key `required` {(table, key): value or a tuple of allowed values} checked."""
    tables = tables or {"distill": DISTILL_DEFAULTS, "data": DATA_DEFAULTS}
    required = REQUIRED if required is None else required

    def fail(msg):
        raise SystemExit(f"{prog}: {msg}")
    try:
        root = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        fail(f"{where}: {e}")
    # As bench-step: the timed student starts from the teacher (before --set, which may say otherwise
    # and is then refused below).
    if force_init:
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
    c = {"teacher": root.get("teacher", teacher)}
    for table, defaults in tables.items():
        got = root.get(table, {})
        c[table] = {**defaults, **got}
    for (table, key), want in required.items():
        allowed = want if isinstance(want, tuple) else (want,)
        if c[table][key] not in allowed:
            fail(f"{where}: {table}.{key} = {c[table][key]!r}: this twin implements "
                 f"{' or '.join(repr(v) for v in allowed)} only")
    return c


# ---------------------------------------------------------------- randomness (core/rng.cpp)


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
    """UNet::encode: the bottleneck features (the encoder and the middle blocks; a video's
    [B, K, C, r, r]). `labels`: a video model's condition channels (unet.UNet.forward)."""
    return net.encode(x, t, labels)


def bottleneck_resolution(resolution, levels):
    r = resolution
    for _ in range(1, levels):
        r = (r + 1) // 2
    return r


class FeatureDiscriminator(nn.Module):
    """DMD2's head on a backbone's bottleneck (models/feature_discriminator.cpp): [conv 4x4 stride 2,
    GroupNorm, SiLU] down to 1x1, then a 1x1 conv to a logit; for a video backbone the same with 3-D
    convolutions over (frames, height, width) (kernel 3, padding 1 on frames) and the logit averaged
    over frames. Only the head is registered (parameter names as retort's)."""

    def __init__(self, backbone, groups=8):
        super().__init__()
        self.backbone = [backbone]  # held, not registered
        net = backbone.net
        self.video = net.frames > 0
        if self.video:
            C, r = net.o["widths"][-1], bottleneck_resolution(net.o["resolution"], net.L)

            def conv(cin, cout, k, stride, pad):
                return nn.Conv3d(cin, cout, (1 if k == 1 else 3, k, k), stride=(1, stride, stride),
                                 padding=(0 if k == 1 else 1, pad, pad))
        else:
            with torch.no_grad():
                C, r = encode(net, torch.zeros((1,) + backbone.shape), torch.full((1,), 0.5),
                              torch.zeros(1, dtype=torch.int64) if net.num_classes > 0 else None).shape[1:3]

            def conv(cin, cout, k, stride, pad):
                return nn.Conv2d(cin, cout, k, stride=stride, padding=pad)
        layers = []
        while r > 1:
            layers += [conv(C, C, 4, 2, 1), nn.GroupNorm(min(groups, C), C), nn.SiLU()]
            r //= 2
        layers.append(conv(C, 1, 1, 1, 0))
        self.heads = nn.ModuleList([nn.Sequential(*layers)])

    def part_logits(self, xt, t, labels):
        f = encode(self.backbone[0].net, xt, t, labels)
        l = self.heads[0](f.permute(0, 2, 1, 3, 4) if self.video else f).squeeze(1)  # video: [B, C, K, r, r]
        return [l.reshape(l.shape[0], -1).mean(1)]

    def logit(self, xt, t, labels):
        """The mean over parts of each part's mean logit: the log density ratio of softened RKL."""
        return mean_part_logit(self.part_logits(xt, t, labels))


def mean_part_logit(parts):
    l = parts[0].reshape(parts[0].shape[0], -1).mean(1)
    for p in parts[1:]:
        l = l + p.reshape(p.shape[0], -1).mean(1)
    return l / float(len(parts))


# ---------------------------------------------------------------- the update

def h_of_logit(f, l):
    """distill/fdiv.cpp h_of_logit: the per-sample weight of the f-divergence's gradient."""
    if f == "rkl":
        return torch.ones_like(l)
    if f == "kl":
        return l.exp()
    if f == "js":
        return torch.sigmoid(l)
    if f == "softened_rkl":
        return torch.sigmoid(-l)
    if f == "hellinger":
        return 0.5 * (0.5 * l).exp()
    if f == "jeffreys":
        return l.exp() + 1
    fail(f"unknown f-divergence '{f}'")


class Dmd2:
    """A student distillation (train/student_distill.cpp, train/distill_loop.cpp) with DMD2's models:
    the student, the fake score (a trainable copy of the teacher), the discriminator head on the
    backbone `disc_backbone` names, the average. Subclasses change the data (conditions, real_batch)
    and the stages (start_stage); this class is `retort distill`'s one DMD2 stage on Fashion-MNIST."""

    workload = "dmd2-update"
    disc_backbone = "fake"  # DMD2's head reads the fake score; FVGen's the teacher
    # The modules whose weights at the dumped update must equal the teacher's (--check)
    starts_at_teacher = ("generator", "fake", "generator_ema")
    own_draws_must_match = False  # --check: fail when this generator's draws differ from the dump's

    @staticmethod
    def read_config(text, sets, where):
        return read_config(text, sets, where)

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
        self.load_data(c)
        torch.manual_seed(d["seed"])  # the head's initialisation (a timed run's; --check loads retort's)
        self.student = copy.deepcopy(self.teacher).requires_grad_(True).train()
        self.fake = copy.deepcopy(self.teacher).requires_grad_(True).train()
        self.disc = FeatureDiscriminator(self.fake if self.disc_backbone == "fake" else self.teacher)
        self.average = copy.deepcopy(self.student).requires_grad_(False) if d["ema"] > 0 else None
        self.stats = {}
        self.start_stage(*self.main_stage())

    def main_stage(self):
        """The stage the update times (and --check replays): objective, generator rate, critic updates."""
        return "dmd2", self.d["lr"], self.d["critic_steps"]

    def before_dumped_update(self, rng):
        """--check: what the run did before the dumped update (nothing: it is the first)."""

    # -- data (image/image_distill.cpp): Fashion-MNIST images and their labels
    def load_data(self, c):
        images, labels = load_fashion_mnist(c["data"])
        if tuple(images.shape[1:]) != self.teacher.shape:
            fail(f"data: images are {tuple(images.shape[1:])} but the teacher takes {self.teacher.shape}")
        self.images = images
        self.labels = labels if self.teacher.num_classes > 0 else None

    def conditions(self, batch, rng):
        """FewStepStudent::conditions: the generator's condition for `batch` samples."""
        C = self.teacher.num_classes
        return rng.randint(0, C, (batch,)) if C > 0 else torch.full((batch,), NULL_CLASS)

    def real_batch(self, n, rng):
        """The pipeline's RealSampler: n real samples and their condition."""
        idx = rng.randint(0, self.images.shape[0], (n,))
        real_x0 = self.images.index_select(0, idx)
        real_labels = self.labels.index_select(0, idx) if self.labels is not None else torch.full((n,), NULL_CLASS)
        return real_x0, real_labels

    # -- a DistillLoop: its objective ("gan", "dmd2" or an f-divergence), generator rate, critic
    # updates, and fresh optimisers (each stage builds its own), step counting from 0
    def start_stage(self, objective, lr, critic_steps):
        self.objective, self.gen_lr, self.critic_steps = objective, lr, critic_steps
        self.f = "rkl" if objective in ("dmd", "dmd2") else objective
        self.uses_disc = objective == "gan" or self.f != "rkl" or self.d["gan_weight"] > 0
        self.gen_params = list(self.student.parameters())
        self.critic_params = ((list(self.fake.parameters()) if objective != "gan" else [])
                              + (list(self.disc.parameters()) if self.uses_disc else []))
        self.gen_opt = torch.optim.AdamW(self.gen_params, lr=lr, betas=(0.9, 0.999),
                                         weight_decay=self.d["weight_decay"])
        self.critic_opt = torch.optim.AdamW(self.critic_params, lr=self.d["critic_lr"], betas=(0.9, 0.999),
                                            weight_decay=self.d["critic_weight_decay"]) if self.critic_params else None
        self.step = 0

    # -- generator (few_step_student.cpp)
    def time(self, i, batch):
        return torch.full((batch,), (self.timesteps[i] + 1) / self.schedule.T, dtype=torch.float32)

    def draw(self, batch, rng):
        labels = self.conditions(batch, rng)
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

    def gan_generator_loss(self, x0, labels, t, eps):
        fake_logits = self.disc.part_logits(self.noisy(x0, t, eps)[0], t, labels)
        return F.softplus(-fake_logits[0]).mean() / float(len(fake_logits))

    # -- the generator's loss: GanObjective's (stage 1), or DistributionMatching's: DMD's gradient
    # times h(r) of the f-divergence (distribution_matching.cpp, fdiv.cpp), plus DMD2's GAN term
    def generator_loss(self, x0, labels, t, eps):
        if self.objective == "gan":
            return self.gan_generator_loss(x0, labels, t, eps)
        with torch.inference_mode():
            x0d = x0.detach()
            xt, alpha, sigma = self.noisy(x0d, t, eps)
            e_real = self.eps_real(xt, t, labels)
            e_fake = self.fake.eps(xt, t, labels)
            x0_real = (xt - per_sample(sigma, xt) * e_real) / per_sample(alpha, xt)
            x0_fake = (xt - per_sample(sigma, xt) * e_fake) / per_sample(alpha, xt)
            norm = (x0d - x0_real).abs().flatten(1).mean(1).clamp_min(1e-8)
            grad = (x0_fake - x0_real) / per_sample(norm, x0d)
            if self.f != "rkl":
                lc = self.d["logit_clamp"]
                logit = self.disc.logit(xt, t, labels).clamp(-lc, lc)
                h = h_of_logit(self.f, logit)
                self.stats["h_mean"] = h.mean().item()  # before normalising, which would make it 1
                if self.d["normalize_h"]:
                    h = h / h.mean().clamp_min(1e-8)
                self.stats["logit_mean"] = logit.mean().item()
                grad = per_sample(h, x0d) * grad
        self.stats["grad_norm"] = grad.flatten(1).norm(2, 1).mean().item()
        loss = 0.5 * (x0 - (x0 - grad).detach()).pow(2).mean()
        if self.d["gan_weight"] > 0:
            gan = self.gan_generator_loss(x0, labels, t, eps)
            self.stats["gan_g"] = gan.item()
            loss = loss + self.d["gan_weight"] * gan
        return loss

    # -- one critic update (distill_loop.cpp critic_update, DistributionMatching::critic_loss,
    # GanObjective::critic_loss)
    def critic_update(self, shared, k, rng):
        B = self.d["batch"]
        if k == 0 and self.d["share_noise"]:
            x0, labels, (t, eps) = shared[0].detach(), shared[1], shared[2]
        else:
            with torch.no_grad():
                x0, labels = self.draw(B, rng)
            x0 = x0.detach()
            t, eps = self.draw_noise(x0, rng)
        if self.uses_disc:  # the objective needs real samples only for its discriminator
            real_x0, real_labels = self.real_batch(x0.shape[0], rng)
            real_t, real_eps = self.draw_noise(real_x0, rng)
        loss = None
        if self.objective != "gan":
            loss = (self.fake.eps(self.noisy(x0, t, eps)[0], t, labels) - eps).pow(2).mean()
            self.stats["fake_dsm"] = loss.item()
        if self.uses_disc:
            real = self.disc.part_logits(self.noisy(real_x0, real_t, real_eps)[0], real_t, real_labels)
            fake = self.disc.part_logits(self.noisy(x0, t, eps)[0], t, labels)
            d = (F.softplus(-real[0]).mean() + F.softplus(fake[0]).mean()) / float(len(real))
            with torch.no_grad():
                lr_, lf = mean_part_logit(real), mean_part_logit(fake)
                self.stats["logit_real"] = lr_.mean().item()
                self.stats["logit_fake"] = lf.mean().item()
                self.stats["disc_accuracy"] = 0.5 * ((lr_ > 0).float().mean() + (lf < 0).float().mean()).item()
            if loss is None:  # the GAN stage: the discriminator's loss alone
                loss = d
            else:
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
            self.stats["gen_grad_norm"] = gnorm
            if math.isfinite(gnorm):
                hl = self.d["lr_half_life"]
                set_lr(self.gen_opt, self.gen_lr * 0.5 ** (self.step / hl) if hl > 0 else self.gen_lr)
                self.gen_opt.step()
                if self.average is not None:
                    decay = min(self.d["ema"], (self.step + 1) / (self.step + 10))
                    with torch.no_grad():
                        for pe, p in zip(self.average.parameters(), self.student.parameters()):
                            pe.mul_(decay).add_(p, alpha=1 - decay)
                if self.critic_opt is not None:
                    for k in range(self.critic_steps):
                        self.critic_update((x0, labels, (t, eps)), k, rng)
        self.step += 1
        return gl


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

def check(path, tol, cls=None):
    """Recompute the dumped update with `cls` (Dmd2 or a subclass: fvgen.py's) and compare."""
    cls = cls or Dmd2
    workload = cls.workload
    if not os.path.isfile(path):
        fail(f"--check {path}: no such file")
    try:
        tensors, meta = load_safetensors(path)
    except (ValueError, KeyError, MemoryError, struct.error) as e:
        fail(f"--check {path}: not a safetensors file ({type(e).__name__})")
    if meta.get("bench.workload") != workload:
        fail(f"{path}: not a {workload} dump (write one with retort bench-step --workload {workload} --dump)")
    unet.require_libtorch_ops(path, meta)
    c = cls.read_config(meta["bench.config"], [], f"{path}: bench.config")
    kinds = json.loads(meta["bench.draws"])
    replay = [(k, tensors[f"draw.{i:04d}"]) for i, k in enumerate(kinds)]
    m = cls(c)
    rng = Rng(c["distill"]["seed"])
    m.before_dumped_update(rng)  # what the run did before it (its start weights are loaded after)
    modules = {"generator": m.student, "fake": m.fake}
    if m.uses_disc:  # plain RKL's stage has no discriminator
        modules["disc"] = m.disc
    if m.average is not None:
        modules["generator_ema"] = m.average
    order = json.loads(meta["bench.params"])

    def key(name, k):  # retort's student is FewStepStudent{net: the denoiser}: one "net." more
        return k[len("net."):] if name.startswith("generator") else k

    start = {}
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
    rng.replay = replay  # the dump's draws from here; rng's own draws continue to be compared
    m.update(rng)
    if rng.i != len(replay):
        fail(f"the update drew {rng.i} of the dump's {len(replay)} draws")
    diffs, moved, grads, identical = compare_after(modules, tensors, order, "update")
    at_teacher = {k: v for k, v in start.items() if k in m.starts_at_teacher}
    ok = (all(v <= tol for v in diffs.values()) and all(v <= tol for v in grads.values())
          and all(v == 0 for v in at_teacher.values())
          and not (m.own_draws_must_match and rng.own_mismatches))
    print(json.dumps({"check": workload, "ok": ok, "bit_identical": identical,
                      "max_abs_diff_weights_after": diffs, "max_rel_diff_gradients_after": grads,
                      "weights_moved_by": moved,
                      "max_abs_diff_start_vs_teacher": at_teacher,
                      "draws": len(replay), "draws_this_generator_differs": rng.own_mismatches,
                      "batch": c["distill"]["batch"], "critic_steps": c["distill"]["critic_steps"], "tol": tol,
                      "stats": m.stats}))
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
