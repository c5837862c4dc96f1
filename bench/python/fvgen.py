#!/usr/bin/env python3
"""One stage-2 update of retort's FVGen distillation in plain PyTorch, for the side-by-side with
`retort bench-step --workload fvgen-update`. Code path for code path `retort distill-nvs` on
configs/nvs-distill.toml (src/retort/nvs/video_distill.cpp through train/student_distill.cpp):
  * the models: the video teacher (unet.py's UNet with frames, temporal attention and the
    point-cloud renders + coverage mask as concatenated input channels), the K-step student and the
    fake score (trainable copies of it), the discriminator: a 3-D conv head on the frozen teacher's
    bottleneck (models/feature_discriminator.cpp);
  * the data (nvs/scene_dataset.cpp, video_teacher.cpp nvs_condition): the generator's conditions
    and the real clips drawn by index from a render-scenes file;
  * stage 1, the GAN initialisation (distill/gan.cpp): gan_init_steps generator updates at
    gan_init_lr against a discriminator trained on real clips (here, as in bench-step: one, not timed);
  * stage 2, the timed one: the softened reverse KL (distribution_matching.cpp, fdiv.cpp): DMD's
    normalised gradient (x0_fake - x0_real) / mean|x0 - x0_real| times h = 1 / (r + 1) = sigmoid(-l)
    per sample, l the discriminator's clamped logit, as a surrogate loss; AdamW, gradient clipping;
    then critic_steps critic updates: the fake score's denoising loss + disc_weight x the
    discriminator's logistic loss on real against generated clips (share_noise: the first reuses
    the generator's x0, t and noise). Fresh optimisers per stage, as each DistillLoop builds its own.
The loop itself (draws, backward simulation, optimiser steps, critic updates) is dmd2.py's Dmd2.
Every random number comes from one seeded CPU generator drawn in retort's order (dmd2.Rng).

  fvgen.py [--config configs/nvs-distill.toml] [--set data.train=\\"...\\" ...] [--steps 3] [--warmup 1]
           [--threads 1]
  fvgen.py --check DUMP   # DUMP from `retort bench-step --workload fvgen-update --dump DUMP`

A timed run prints one JSON line like the C++ command (ms_per_update: median of the timed stage-2
updates, timed from the generator's draw to the end of the last critic step, as
DistillLoopOptions::on_update; stage 1's one update runs first, untimed).
--check starts from the dump's weights (those after stage 1: the student's and the head's are not
the teacher's; the fake score's must be), replays the dump's recorded draws, recomputes the stage-2
update and prints the largest differences of the weights of student, fake score and head after it
and of the gradients it leaves, and whether all are bit for bit; exit 1 when one exceeds --tol
(default 0: they agree bit for bit). A dump of a warm-started run (distill.init, which the timed run
refuses) is checked too: its start weights stand for the other run's. Stage 1 runs first here too,
on this generator, from the teacher and a fresh head: its weights are then replaced by the dump's,
and draws_this_generator_differs must be 0: stage 1 drew what retort's stage 1 drew.
"""
import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dmd2  # noqa: E402  (unet sets retort's BLAS thread policy before torch loads)
from dmd2 import Dmd2  # noqa: E402
from unet import Rng  # noqa: E402
from unet import load_safetensors  # noqa: E402

import torch  # noqa: E402

DEFAULT_CONFIG = "configs/nvs-distill.toml"
WORKLOAD = "fvgen-update"

# retort's defaults for the keys a config may leave out (`retort config distill-nvs`; the presets of
# the methods below are all "the defaults").
DISTILL_DEFAULTS = {
    "method": "fvgen", "student_steps": 4, "timesteps": [], "backward_simulation": True, "gan_init_steps": 300,
    "gan_init_lr": 0.0, "disc_features": "bottleneck", "fake": "copy", "steps": 1000, "batch": 4,
    "critic_steps": 1, "share_noise": True, "lr": 1e-4, "critic_lr": 1e-4, "lr_half_life": 0.0,
    "weight_decay": 0.01, "critic_weight_decay": 0.01, "grad_clip": 10.0, "critic_grad_clip": 10.0,
    "t_min": 0.02, "t_max": 0.98, "anneal": "none", "ema": 0.0, "cfg_scale": 1.0, "weighting": "sigma2",
    "dmd_normalize": True, "logit_clamp": 10.0, "normalize_h": False, "gan_weight": 0.0, "disc_weight": 1.0,
    "r1_weight": 0.0, "r1_sigma": 0.05, "seed": 0, "init": "",
}
DATA_DEFAULTS = {"train": "runs/scenes/train.safetensors", "preview": ""}
RUNTIME_DEFAULTS = {"device": "cpu"}
# The stage-2 objective of each method bench-step's fvgen-update accepts (train/student_distill.cpp
# method_plan: a GAN initialisation, then this f-divergence; "rkl" is DMD's gradient, h = 1).
METHODS = {"fvgen": "softened_rkl", "rkl": "rkl", "kl": "kl", "js": "js", "hellinger": "hellinger",
           "jeffreys": "jeffreys"}
# What this twin implements; anything else is refused rather than silently timed differently.
REQUIRED = {("distill", "method"): tuple(METHODS), ("distill", "fake"): "copy",
            ("distill", "disc_features"): "bottleneck", ("distill", "anneal"): "none",
            ("distill", "r1_weight"): 0.0, ("distill", "init"): "", ("distill", "dmd_normalize"): True,
            ("distill", "cfg_scale"): 1.0, ("distill", "gan_weight"): 0.0, ("runtime", "device"): "cpu"}


def fail(msg):
    raise SystemExit(f"fvgen.py: {msg}")


def read_config(text, sets, where, dumped=False):
    """dumped: a dump's config, whose [distill] init (a warm start) the dump's start weights stand for."""
    required = {k: v for k, v in REQUIRED.items() if not (dumped and k == ("distill", "init"))}
    c = dmd2.read_config(text, sets, where,
                         tables={"distill": DISTILL_DEFAULTS, "data": DATA_DEFAULTS, "runtime": RUNTIME_DEFAULTS},
                         required=required, teacher="weights/nvs-teacher.safetensors", force_init=False,
                         prog="fvgen.py")
    if c["distill"]["gan_init_steps"] < 1:
        fail(f"{where}: distill.gan_init_steps = 0: method '{c['distill']['method']}' starts with a GAN initialisation")
    return c


# ---------------------------------------------------------------- data (nvs/scene_dataset.cpp)

def load_scene_clips(path):
    """frames, renders [N, K, 3, R, R] in [-1, 1] and masks [N, K, 1, R, R] of a render-scenes file."""
    if not os.path.isfile(path):
        fail(f"data.train {path}: no such file (make it with retort render-scenes; README, \"Scenes and "
             "point-cloud renders\")")
    t, meta = load_safetensors(path)
    if meta.get("format") is None or "frames" not in t or "renders" not in t or "masks" not in t:
        fail(f"{path}: not a render-scenes file")

    def u8(x):
        return x.to(torch.float32).div_(127.5).sub_(1.0)
    return u8(t["frames"]), u8(t["renders"]), t["masks"].to(torch.float32)


# ---------------------------------------------------------------- the update

class FVGen(Dmd2):
    """distill_nvs: Dmd2's loop with the video teacher, clips for data, the head on the teacher and
    two stages. Built in stage 2 (what --check replays); run_stage1 runs stage 1 first."""

    workload = WORKLOAD
    disc_backbone = "teacher"
    starts_at_teacher = ("fake",)  # stage 1 moved the student (and its average) and trained the head
    own_draws_must_match = True  # stage 1 here drew what retort's did (before_dumped_update)

    @staticmethod
    def read_config(text, sets, where):  # --check's
        return read_config(text, sets, where, dumped=True)

    def __init__(self, c):
        self.data_path = c["data"]["train"]
        if c["distill"]["init"]:  # a warm start (--check only): the fake score is another run's too
            self.starts_at_teacher = ()
        super().__init__(c)

    def main_stage(self):  # stage 2
        return METHODS[self.d["method"]], self.d["lr"], self.d["critic_steps"]

    def before_dumped_update(self, rng):
        """--check: stage 1, on this generator, so that the replay counts whether stage 2's draws are
        the ones it would draw: they are when stage 1 drew what retort's did (the weights it leaves
        are then replaced by the dump's: its head started from retort's random initialisation)."""
        self.run_stage1(rng)

    def run_stage1(self, rng):
        """Stage 1 (GAN initialisation), as bench-step runs it: one update; then stage 2 starts."""
        lr = self.d["gan_init_lr"] if self.d["gan_init_lr"] > 0 else self.d["lr"]
        self.start_stage("gan", lr, 1)
        self.update(rng)
        self.start_stage(*self.main_stage())

    def load_data(self, c):
        o = self.teacher.net.o
        if not o.get("frames") or o.get("concat_channels") not in (3, 4):
            fail(f"teacher {c['teacher']}: not a novel-view video teacher")
        self.frames, self.renders, self.masks = load_scene_clips(self.data_path)
        K, R = self.frames.shape[1], self.frames.shape[3]
        if K != o["frames"] or R != o["resolution"]:
            fail(f"data.train: {self.data_path} has {K} frames at {R} px; the teacher takes {o['frames']} "
                 f"frames at {o['resolution']} px")
        self.mask = o["concat_channels"] == 4
        self.N = self.frames.shape[0]

    def condition(self, idx):
        """nvs_condition: the point-cloud renders of clips idx, and their coverage mask."""
        r = self.renders.index_select(0, idx)
        return torch.cat([r, self.masks.index_select(0, idx).to(r.dtype)], -3) if self.mask else r

    def conditions(self, batch, rng):
        return self.condition(rng.randint(0, self.N, (batch,)))

    def real_batch(self, n, rng):
        idx = rng.randint(0, self.N, (n,))
        return self.frames.index_select(0, idx), self.condition(idx)


# ---------------------------------------------------------------- timed run

def timed(a):
    if not os.path.isfile(a.config):
        fail(f"--config {a.config}: no such file (run from the repository root)")
    with open(a.config, "rb") as f:
        c = read_config(f.read().decode(), a.set, a.config)
    m = FVGen(c)
    rng = Rng(c["distill"]["seed"])
    m.run_stage1(rng)  # not timed, as bench-step
    ms = []
    for i in range(a.warmup + a.steps):
        t0 = time.perf_counter()
        m.update(rng)
        if i >= a.warmup:
            ms.append(1000 * (time.perf_counter() - t0))
    d = c["distill"]
    return {"impl": "pytorch", "workload": WORKLOAD, "config": a.config, "sets": a.set, "method": d["method"],
            "objective": m.objective, "batch": d["batch"], "frames": m.teacher.shape[0],
            "critic_steps": d["critic_steps"], "student_steps": len(m.timesteps), "fake": d["fake"],
            "teacher": c["teacher"], "ms_per_update": statistics.median(ms), "ms_min": min(ms), "ms_max": max(ms),
            "updates": a.steps, "warmup": a.warmup, "threads": torch.get_num_threads(), "torch": torch.__version__}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--config", default=DEFAULT_CONFIG)
    p.add_argument("--set", action="append", default=[], metavar="TABLE.KEY=VALUE",
                   help="override a config key, as bench-step's --set (repeatable)")
    p.add_argument("--steps", type=int, default=3, help="timed stage-2 updates")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--workload", choices=[WORKLOAD], default=WORKLOAD, help="for bench-step's flags")
    p.add_argument("--threads", type=int, default=1, help="intra-op threads, as retort's runtime.threads (0 = all)")
    p.add_argument("--check", metavar="DUMP", help="recompute a `bench-step --workload fvgen-update --dump` file")
    p.add_argument("--tol", type=float, default=0.0,
                   help="largest allowed difference (weights: absolute; gradients: relative to each module's "
                        "largest); 0 = bit for bit")
    a = p.parse_args()
    if a.steps < 1 or a.warmup < 0:
        fail("--steps must be >= 1 and --warmup >= 0")
    torch.set_num_threads(a.threads if a.threads > 0 else os.cpu_count())
    torch.set_num_interop_threads(1)
    if a.check:
        sys.exit(dmd2.check(a.check, a.tol, FVGen))
    print(json.dumps(timed(a)))


if __name__ == "__main__":
    main()
