#!/usr/bin/env python3
"""retort's UNet workloads in plain PyTorch, for the side-by-side with `retort bench-step`
(bench/python_compare.sh). Module for module the network of src/retort/models/unet.cpp (time
embedding, class embedding with the null class, residual blocks, attention at the lowest resolution;
and the video model of train-nvs-teacher: frames folded into the batch, temporal self-attention
across frames, condition channels concatenated to the input), its parameter names those of retort's
safetensors files, so retort's weights load by name; the schedule of diffusion/schedule.cpp, the teacher trainer's step (train/denoiser_train.cpp)
and DDIM with classifier-free guidance as generators/image_sampling.cpp and diffusion/sampler.cpp
do it.

  unet.py --workload unet-train [--weights F] [--batch 64] [--steps 20] [--warmup 3] [--threads 1]
  unet.py --workload ddim-sample [--weights F] [--batch 64] [--sampler-steps 50] [--cfg 3] ...
  unet.py --check DUMP    # DUMP from `retort bench-step --workload W --dump DUMP`
  unet.py --workload W --profile 25   # also the top 25 operators by self CPU time

A timed run prints one JSON line like the C++ command. --check recomputes the dump's step from
its weights and input and prints the largest differences; exit 1 when one exceeds --tol.
No dependency but torch (a tiny safetensors reader is below).
"""
import argparse
import copy
import json
import math
import os
import statistics
import struct
import sys
import time

# retort's thread policy (core/runtime.cpp) for the BLAS pool: one thread. Read when torch loads.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

NULL_CLASS = -1  # models/denoiser.h kNullClass
DEFAULT_WEIGHTS = {"unet-train": "weights/world-teacher.safetensors",
                   "ddim-sample": "weights/fmnist-teacher.safetensors"}
DEFAULTS = {"unet-train": (64, 20, 3), "ddim-sample": (64, 3, 1)}  # batch, steps, warmup (as the CLI's)

# ---------------------------------------------------------------- safetensors

_DTYPES = {"F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
           "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
           "BOOL": torch.bool}


def load_safetensors(path):
    """(tensors, metadata): an 8-byte little-endian header length, a JSON header, raw little-endian data."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    meta = header.pop("__metadata__", None) or {}
    tensors = {}
    for name, e in header.items():
        a, b = e["data_offsets"]
        dtype = _DTYPES[e["dtype"]]
        flat = torch.frombuffer(bytearray(data[a:b]), dtype=dtype) if b > a else torch.empty(0, dtype=dtype)
        tensors[name] = flat.reshape(e["shape"])
    return tensors, meta


# ---------------------------------------------------------------- schedule (diffusion/schedule.cpp)

class Schedule:
    """A discrete variance-preserving schedule: step k at t = (k + 1) / T, log alpha_bar linear between."""

    def __init__(self, kind, steps, continuous=False):
        if continuous:
            raise SystemExit("unet.py: continuous schedules are not implemented here")
        T = steps
        f64 = torch.float64
        if kind == "linear":
            betas = torch.linspace(1e-4, 2e-2, T, dtype=f64)
        elif kind == "scaled_linear":
            betas = torch.linspace(math.sqrt(0.00085), math.sqrt(0.012), T, dtype=f64).pow(2)
        elif kind == "cosine":
            s = 0.008

            def f(u):
                c = math.cos((u + s) / (1 + s) * math.pi / 2)
                return c * c
            betas = torch.tensor([min(1 - f((k + 1) / T) / f(k / T), 0.999) for k in range(T)], dtype=f64)
        else:
            raise SystemExit(f"unet.py: unknown schedule '{kind}'")
        self.T = T
        self.abar = torch.cumprod(1 - betas, 0)
        self.log_table = torch.cat([torch.zeros(1, dtype=f64), self.abar.log()])

    def alpha_bar(self, t):
        td = t.to(torch.float64).clamp(0, 1)
        u = td * float(self.T)
        lo = u.floor().clamp(0, self.T - 1)
        w = u - lo
        lo_i = lo.long()
        log_abar = self.log_table[lo_i] * (1 - w) + self.log_table[lo_i + 1] * w
        return log_abar.exp().to(t.dtype)

    def snap(self, t):
        T = float(self.T)
        return ((t * T).ceil().clamp(1, T) / T).to(t.dtype)


def per_sample(v, like):
    return v.reshape([v.shape[0]] + [1] * (like.dim() - 1))


# ---------------------------------------------------------------- the network (models/unet.cpp)

def time_features(t, dim):
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32) / half)
    args = (t.to(torch.float32) * 1000).unsqueeze(1) * freqs.unsqueeze(0)
    return torch.cat([args.sin(), args.cos()], 1)


def conv3(cin, cout, stride=1):
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1)


class ResBlock(nn.Module):
    def __init__(self, cin, cout, emb_dim, groups, dropout):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, cin)
        self.conv1 = conv3(cin, cout)
        self.emb_proj = nn.Linear(emb_dim, cout)
        self.norm2 = nn.GroupNorm(groups, cout)
        self.drop = nn.Dropout(dropout)
        self.conv2 = conv3(cout, cout)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else None

    def forward(self, x, emb):
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.emb_proj(F.silu(emb)).unsqueeze(-1).unsqueeze(-1)
        h = self.conv2(self.drop(F.silu(self.norm2(h))))
        return (self.skip(x) if self.skip is not None else x) + h


class AttentionBlock(nn.Module):
    def __init__(self, channels, heads, groups):
        super().__init__()
        self.heads = heads
        self.norm = nn.GroupNorm(groups, channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.proj = nn.Conv2d(channels, channels, 1)

    def forward(self, x):
        B, C, H, W = x.shape
        n, d = self.heads, C // self.heads
        qkv = self.qkv(self.norm(x)).reshape(B, 3, n, d, H * W)
        q = qkv.select(1, 0).reshape(B * n, d, H * W).transpose(1, 2)
        k = qkv.select(1, 1).reshape(B * n, d, H * W)
        v = qkv.select(1, 2).reshape(B * n, d, H * W).transpose(1, 2)
        attn = torch.softmax(torch.bmm(q, k) / math.sqrt(d), -1)
        out = torch.bmm(attn, v).transpose(1, 2).reshape(B, C, H, W)
        return x + self.proj(out)


class TemporalAttention(nn.Module):
    """Self-attention across the K frames of a clip at every pixel, with a sinusoidal frame code
    added to the normalised features (TemporalAttentionImpl)."""

    def __init__(self, channels, heads, groups, frames):
        super().__init__()
        if channels % heads or channels % 2:
            raise SystemExit(f"unet.py: temporal_heads = {heads} must divide width {channels} (and it must be even)")
        self.heads, self.frames = heads, frames
        self.norm = nn.GroupNorm(groups, channels)
        self.qkv = nn.Linear(channels, 3 * channels)
        self.proj = nn.Linear(channels, channels)

    def forward(self, x):
        K = self.frames
        B, C, H, W = x.shape[0] // K, x.shape[1], x.shape[2], x.shape[3]
        n, d = self.heads, C // self.heads
        # [B*K, C, H, W] -> one sequence of K frames per pixel: [B, HW, K, C]
        h = self.norm(x).reshape(B, K, C, H * W).permute(0, 3, 1, 2)
        frame = torch.arange(K, dtype=torch.float32) / 1000.0  # time_features scales by 1000
        h = h + time_features(frame, C).to(x.dtype)
        qkv = self.qkv(h).reshape(B * H * W, K, 3, n, d).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0].reshape(-1, K, d), qkv[1].reshape(-1, K, d), qkv[2].reshape(-1, K, d)
        attn = torch.softmax(torch.bmm(q, k.transpose(1, 2)) / math.sqrt(d), -1)
        out = torch.bmm(attn, v).reshape(B * H * W, n, K, d).permute(0, 2, 1, 3).reshape(B, H * W, K, C)
        out = self.proj(out).permute(0, 2, 3, 1).reshape(B * K, C, H, W)
        return x + out


class UNet(nn.Module):
    """retort's UNet. A video model (frames K > 0) takes x as [B, K, C, H, W] and runs every 2-D block
    on the B*K frames; its condition channels (concat_channels > 0: point-cloud renders and mask,
    [B, K, Cc, H, W]) are given in place of the labels, as such models have no classes here."""

    def __init__(self, o):
        super().__init__()
        self.frames, self.concat_channels = o.get("frames", 0), o.get("concat_channels", 0)
        if o.get("camera_dim", 0):
            raise SystemExit("unet.py: UNets with a camera embedding (camera_dim > 0) are not implemented here")
        if self.concat_channels and o["num_classes"]:
            raise SystemExit("unet.py: condition channels together with classes are not implemented here")
        widths, E, g, blocks = o["widths"], o["time_dim"], o["groups"], o["blocks"]
        self.o, self.L, self.blocks, self.time_dim = o, len(widths), blocks, E
        self.num_classes = o["num_classes"]
        th, tf = o.get("temporal_heads", 0), o.get("temporal_from", 0)
        if th and not self.frames:
            raise SystemExit("unet.py: temporal_heads > 0 needs a video model (frames > 0)")
        self.time_mlp = nn.Sequential(nn.Linear(E, E), nn.SiLU(), nn.Linear(E, E))
        # Index num_classes is the null class of classifier-free guidance.
        self.class_embed = nn.Embedding(self.num_classes + 1, E) if self.num_classes > 0 else None
        self.in_conv = conv3(o["channels"] + self.concat_channels, widths[0])
        # Registered here, as retort does, so the parameter order (gradient clipping's) is retort's;
        # image models keep their module tree without them.
        self.down_temporal = nn.ModuleList() if th else None
        self.up_temporal = nn.ModuleList() if th else None
        self.down_temporal_index, self.up_temporal_index = [], []

        def add_temporal(lst, index, l, width):
            if th and l >= tf:
                index.append(len(lst))
                lst.append(TemporalAttention(width, th, g, self.frames))
            else:
                index.append(-1)

        skip_ch, ch = [widths[0]], widths[0]
        self.down_blocks, self.downsamples = nn.ModuleList(), nn.ModuleList()
        for l in range(self.L):
            for _ in range(blocks):
                self.down_blocks.append(ResBlock(ch, widths[l], E, g, o["dropout"]))
                add_temporal(self.down_temporal, self.down_temporal_index, l, widths[l])
                ch = widths[l]
                skip_ch.append(ch)
            if l + 1 < self.L:
                self.downsamples.append(conv3(ch, ch, 2))
                skip_ch.append(ch)
        self.mid1 = ResBlock(ch, ch, E, g, o["dropout"])
        self.mid_attn = AttentionBlock(ch, o["heads"], g) if o["heads"] > 0 else None
        self.mid_temporal = TemporalAttention(ch, th, g, self.frames) if th else None
        self.mid2 = ResBlock(ch, ch, E, g, o["dropout"])
        self.up_blocks, self.upsamples = nn.ModuleList(), nn.ModuleList()
        for l in reversed(range(self.L)):
            for _ in range(blocks + 1):
                self.up_blocks.append(ResBlock(ch + skip_ch.pop(), widths[l], E, g, o["dropout"]))
                add_temporal(self.up_temporal, self.up_temporal_index, l, widths[l])
                ch = widths[l]
            if l > 0:
                self.upsamples.append(conv3(ch, ch))
        self.out_norm = nn.GroupNorm(g, ch)
        self.out_conv = conv3(ch, o["channels"])

    def embed(self, t, labels, batch):
        emb = self.time_mlp(time_features(t, self.time_dim))
        if self.class_embed is not None:
            idx = labels if labels is not None else torch.full((batch,), NULL_CLASS, dtype=torch.int64)
            idx = torch.where(idx == NULL_CLASS, torch.full_like(idx, self.num_classes), idx)
            emb = emb + self.class_embed(idx)
        return emb

    def input(self, x, cond):
        """UNetImpl::input: the condition channels appended, a video's frames folded into the batch."""
        K, video = self.frames, self.frames > 0
        if video and (x.dim() != 5 or x.shape[1] != K):
            raise SystemExit(f"unet.py: expected videos [B,{K},C,H,W], got {list(x.shape)}")
        h = x
        if self.concat_channels:
            if cond is None:
                raise SystemExit(f"unet.py: this model reads {self.concat_channels} condition channels; none given")
            h = torch.cat([x, cond.to(x.dtype)], 2 if video else 1)
        return h.flatten(0, 1) if video else h

    def _embed_frames(self, t, labels, x):
        emb = self.embed(t, None if self.concat_channels else labels, x.shape[0])
        return emb.repeat_interleave(self.frames, 0) if self.frames else emb

    def _temporal(self, index, blocks, i, h):
        if not index or index[i] < 0:
            return h
        return blocks[index[i]](h)

    def down(self, x, emb, skips):
        h = self.in_conv(x)
        if skips is not None:
            skips.append(h)
        i = 0
        for l in range(self.L):
            for _ in range(self.blocks):
                h = self.down_blocks[i](h, emb)
                h = self._temporal(self.down_temporal_index, self.down_temporal, i, h)
                i += 1
                if skips is not None:
                    skips.append(h)
            if l + 1 < self.L:
                h = self.downsamples[l](h)
                if skips is not None:
                    skips.append(h)
        h = self.mid1(h, emb)
        if self.mid_attn is not None:
            h = self.mid_attn(h)
        if self.mid_temporal is not None:
            h = self.mid_temporal(h)
        return self.mid2(h, emb)

    def unfold_frames(self, h):
        return h.reshape((h.shape[0] // self.frames, self.frames) + tuple(h.shape[1:])) if self.frames else h

    def encode(self, x, t, labels):
        """UNetImpl::encode: the bottleneck features ([B, K, C, r, r] for a video)."""
        emb = self._embed_frames(t, labels, x)
        return self.unfold_frames(self.down(self.input(x, labels), emb, None))

    def forward(self, x, t, labels):
        """labels: class labels (or None); for a model with condition channels, those channels."""
        emb = self._embed_frames(t, labels, x)
        skips = []
        h = self.down(self.input(x, labels), emb, skips)
        i = 0
        for l in reversed(range(self.L)):
            for _ in range(self.blocks + 1):
                h = self.up_blocks[i](torch.cat([h, skips.pop()], 1), emb)
                h = self._temporal(self.up_temporal_index, self.up_temporal, i, h)
                i += 1
            if l > 0:  # to the size of the skip it meets next (7 -> 14 -> 28 works)
                nxt = skips[-1]
                h = F.interpolate(h, size=(nxt.shape[2], nxt.shape[3]), mode="nearest")
                h = self.upsamples[self.L - 1 - l](h)
        return self.unfold_frames(self.out_conv(F.silu(self.out_norm(h))))


class Denoiser(nn.Module):
    """The UNet with its schedule and prediction type; state-dict keys are retort's ("net. ...")."""

    def __init__(self, meta):
        super().__init__()
        m = json.loads(meta["retort.unet"])
        self.net = UNet(m)
        self.prediction = m["prediction"]
        self.schedule = Schedule(m["schedule"], m["schedule_steps"], m.get("schedule_continuous", False))
        self.shape = (m["channels"], m["resolution"], m["resolution"])
        if m.get("frames", 0):  # a video: [K, C, R, R] per sample
            self.shape = (m["frames"],) + self.shape
        self.num_classes = m["num_classes"]

    def eps(self, xt, t, labels):
        out = self.net(xt, t, labels)
        if self.prediction == "eps":
            return out
        abar = self.schedule.alpha_bar(t).to(xt.dtype)
        alpha, sigma = per_sample(abar.sqrt(), xt), per_sample((1 - abar).clamp_min(0).sqrt(), xt)
        if self.prediction == "v":
            return sigma * xt + alpha * out
        return (xt - alpha * out) / sigma  # x0


def load_model(path):
    tensors, meta = load_safetensors(path)
    if "retort.unet" not in meta:
        raise SystemExit(f"unet.py: {path}: not a retort UNet (no 'retort.unet' metadata)")
    model = Denoiser(meta)
    model.load_state_dict({k: v for k, v in tensors.items() if k.startswith("net.")}, strict=True)
    return model, tensors, meta


# ---------------------------------------------------------------- the teacher's training step

# configs/world-teacher.toml's [train] (the keys that shape a step's work)
LR, COND_DROP, GRAD_CLIP, EMA = 1e-3, 0.1, 1.0, 0.999


def draw(model, x0, labels):
    """Condition dropout, t, noise, x_t and the target, in the trainer's order."""
    B, T = x0.shape[0], model.schedule.T
    if labels is not None:
        labels = torch.where(torch.rand(B) < COND_DROP, torch.full_like(labels, NULL_CLASS), labels)
    t = (torch.randint(0, T, (B,)).to(torch.float32) + 1) / float(T)
    eps = torch.randn(x0.shape)
    abar = model.schedule.alpha_bar(t).to(torch.float32)
    alpha, sigma = abar.sqrt(), (1 - abar).sqrt()
    xt = per_sample(alpha, x0) * x0 + per_sample(sigma, x0) * eps
    target = {"eps": eps, "x0": x0}.get(model.prediction)
    if target is None:
        target = per_sample(alpha, x0) * eps - per_sample(sigma, x0) * x0  # v
    return xt, t, labels, target


def fixed_batch(model, batch):
    x0 = torch.rand((batch,) + model.shape) * 2 - 1
    labels = torch.randint(0, model.num_classes, (batch,)) if model.num_classes > 0 else None
    return x0, labels


def unet_train(a):
    model, _, _ = load_model(a.weights)
    ema = copy.deepcopy(model).requires_grad_(False)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=LR, betas=(0.9, 0.999), weight_decay=0.0)
    torch.manual_seed(0)
    x0, labels = fixed_batch(model, a.batch)
    step = 0

    def one_step():
        nonlocal step
        xt, t, lab, target = draw(model, x0, labels)
        loss = (model.net(xt, t, lab) - target).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, GRAD_CLIP)
        opt.step()
        decay = min(EMA, (step + 1) / (step + 10))
        step += 1
        with torch.no_grad():
            for pe, p in zip(ema.parameters(), model.parameters()):
                pe.mul_(decay).add_(p, alpha=1 - decay)
        return loss.item()

    for _ in range(a.warmup):
        one_step()
    ms = []
    for _ in range(a.steps):
        t0 = time.perf_counter()
        loss = one_step()
        ms.append(1000 * (time.perf_counter() - t0))
    c, r, _ = model.shape
    return {"impl": "pytorch", "workload": "unet-train", "ms_per_step": statistics.median(ms), "ms_min": min(ms),
            "batch": a.batch, "resolution": r, "channels": c, "classes": model.num_classes,
            "params": sum(p.numel() for p in model.parameters()), "steps": a.steps, "warmup": a.warmup,
            "loss": loss, "weights": a.weights, "threads": torch.get_num_threads(), "torch": torch.__version__}


# ---------------------------------------------------------------- DDIM with CFG

def sampling_times(schedule, steps):
    return [schedule.snap(torch.tensor([1.0 - i / steps], dtype=torch.float64)).item() for i in range(steps)]


def eps_cfg(model, xt, t, labels, scale):
    if scale == 1.0:
        return model.eps(xt, t, labels)
    B = xt.shape[0]  # the null and conditional passes in one batched call
    out = model.eps(torch.cat([xt, xt]), torch.cat([t, t]), torch.cat([torch.full_like(labels, NULL_CLASS), labels]))
    e_null, e_cond = out[:B], out[B:]
    return e_null + scale * (e_cond - e_null)


def ddim(model, x, labels, times, cfg, clip_x0=1.0, eta=0.0):
    B = x.shape[0]
    sched = model.schedule
    for i, ti in enumerate(times):
        t = torch.full((B,), ti, dtype=x.dtype)
        abar_t = sched.alpha_bar(t)
        alpha_t, sigma_t = abar_t.sqrt(), (1 - abar_t).sqrt()
        eps = eps_cfg(model, x, t, labels, cfg)
        x0 = (x - per_sample(sigma_t, x) * eps) / per_sample(alpha_t, x)
        if clip_x0 > 0:
            x0 = x0.clamp(-clip_x0, clip_x0)
            eps = (x - per_sample(alpha_t, x) * x0) / per_sample(sigma_t, x)
        if i + 1 == len(times):
            return x0
        abar_s = sched.alpha_bar(torch.full((B,), times[i + 1], dtype=x.dtype))
        var = ((eta * eta) * (1 - abar_s) / (1 - abar_t) * (1 - abar_t / abar_s)).clamp_min(0)
        direction = (1 - abar_s - var).clamp_min(0).sqrt()
        x = per_sample(abar_s.sqrt(), x) * x0 + per_sample(direction, x) * eps
    return x


@torch.no_grad()
def sample(model, labels, noise, steps, cfg, batch=250):
    """`retort sample`'s teacher path: DDIM (eta 0), x0 clipped to [-1, 1], `batch` samples per call."""
    model.eval()
    times = sampling_times(model.schedule, steps)
    out = [ddim(model, noise[i:i + batch], labels[i:i + batch], times, cfg) for i in range(0, noise.shape[0], batch)]
    return torch.cat(out).clamp(-1, 1)


def balanced_labels(classes, n):
    return torch.arange(n, dtype=torch.int64).remainder(classes) if classes else torch.full((n,), NULL_CLASS)


def ddim_sample(a):
    model, _, _ = load_model(a.weights)
    if a.cfg != 1.0 and model.num_classes == 0:
        raise SystemExit(f"unet.py: --cfg {a.cfg}: {a.weights} is unconditional")
    labels = balanced_labels(model.num_classes, a.batch)
    torch.manual_seed(0)
    for _ in range(a.warmup):
        sample(model, labels, torch.randn((a.batch,) + model.shape), a.sampler_steps, a.cfg)
    ms = []
    for _ in range(a.steps):
        t0 = time.perf_counter()
        sample(model, labels, torch.randn((a.batch,) + model.shape), a.sampler_steps, a.cfg)
        ms.append(1000 * (time.perf_counter() - t0))
    m = statistics.median(ms)
    c, r, _ = model.shape
    return {"impl": "pytorch", "workload": "ddim-sample", "ms_per_image": m / a.batch,
            "ms_per_sampler_step": m / a.sampler_steps, "ms_per_run": m, "ms_min": min(ms), "batch": a.batch,
            "sampler_steps": a.sampler_steps, "cfg": a.cfg, "resolution": r, "channels": c,
            "classes": model.num_classes, "params": sum(p.numel() for p in model.parameters()), "steps": a.steps,
            "warmup": a.warmup, "weights": a.weights, "threads": torch.get_num_threads(),
            "torch": torch.__version__}


# ---------------------------------------------------------------- --check

# ---------------------------------------------------------------- shared by the distillation twins

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
            raise SystemExit(f"{os.path.basename(sys.argv[0])}: the step drew more than the dump's {len(self.replay)} draws")
        k, t = self.replay[self.i]
        if k != kind or tuple(t.shape) != tuple(own.shape):
            raise SystemExit(f"{os.path.basename(sys.argv[0])}: draw {self.i}: the dump holds {k} {list(t.shape)}, this step drew {kind} {list(own.shape)}")
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


def clip(params, max_norm):
    """finalize_gradients: the global norm before clipping (0 = no clipping). Clipping as LibTorch's
    C++ clip_grad_norm_: its coefficient is max_norm / (norm + 1e-6) as a division, where Python's
    torch.nn.utils.clip_grad_norm_ multiplies by the reciprocal (max_norm / tensor), one ulp apart."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return 0.0
    norms = [torch._VF.norm(g, 2) for g in grads]  # Tensor::norm(p), the overload without dims
    if max_norm > 0:
        total = norms[0] if len(norms) == 1 else torch._VF.norm(torch.stack(norms), 2)
        x = total + 1e-6
        coef = torch.clamp(torch.empty_like(x).fill_(max_norm).div_(x), max=1.0)
        for g in grads:
            g.mul_(coef)
        return total.item()
    return torch._VF.norm(torch.stack(norms), 2).item()


def set_lr(opt, lr):
    for g in opt.param_groups:
        g["lr"] = lr


def maxdiff(a, b):
    return (a.double() - b.double()).abs().max().item()


def compare_after(modules, tensors, keys, what):
    """A dumped step's result against the twin's: for each module (its dump keys in parameter order,
    keys[name]) the largest difference of the weights after ("after."), how far they moved from
    "start.", the largest gradient difference relative to the module's largest ("grad."), and
    whether all are bit for bit. `what` names the step in a message."""
    diffs, moved, grads, identical = {}, {}, {}, True
    for name, mod in modules.items():
        pairs = list(zip((p for _, p in mod.named_parameters()), keys[name]))
        diffs[name] = max(maxdiff(p, tensors[f"after.{name}.{k}"]) for p, k in pairs)
        moved[name] = max(maxdiff(p, tensors[f"start.{name}.{k}"]) for p, k in pairs)
        identical = identical and all(torch.equal(p, tensors[f"after.{name}.{k}"]) for p, k in pairs)
        theirs = [(p.grad, tensors.get(f"grad.{name}.{k}")) for p, k in pairs]
        if any((gr is None) != (t is None) for gr, t in theirs):
            raise SystemExit(f"{os.path.basename(sys.argv[0])}: {name}: gradients left by the {what} differ in "
                             "which parameters have one")
        theirs = [(gr, t) for gr, t in theirs if t is not None]
        if theirs:  # relative to the module's largest gradient component
            scale = max(t.abs().max().item() for _, t in theirs) or 1.0
            grads[name] = max(maxdiff(gr, t) for gr, t in theirs) / scale
            identical = identical and all(torch.equal(gr, t) for gr, t in theirs)
    return diffs, moved, grads, identical



def require_libtorch_ops(path, meta):
    """PyTorch runs LibTorch's direct convolutions and bmm attention; a dump made with retort's own
    kernels (runtime.conv = winograd, runtime.attention = fused) differs from them in the last bits,
    so it cannot be checked bit for bit."""
    name = os.path.basename(sys.argv[0])
    conv = meta.get("bench.conv", "direct")
    if conv != "direct":
        raise SystemExit(f"{name}: {path}: made with conv = {conv}; PyTorch's convolutions "
                         "are retort's direct ones: dump again with bench-step --conv direct")
    attention = meta.get("bench.attention", "bmm")  # the video UNet's temporal attention: FVGen only
    if attention != "bmm" and meta.get("bench.workload") == "fvgen-update":
        raise SystemExit(f"{name}: {path}: made with attention = {attention}; PyTorch's attention is "
                         "retort's bmm one: dump again with bench-step --attention bmm")


def check(path, tol):
    model, d, meta = load_model(path)
    require_libtorch_ops(path, meta)
    workload = meta.get("bench.workload")
    diffs = {}
    if workload == "unet-train":
        labels = d.get("bench.labels")
        model.train()
        params = [p for p in model.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=float(meta["bench.lr"]), betas=(0.9, 0.999), weight_decay=0.0)
        diffs["alpha_bar"] = maxdiff(model.schedule.alpha_bar(d["bench.t"]).float(), d["bench.abar"])
        out = model.net(d["bench.xt"], d["bench.t"], labels)
        diffs["output"] = maxdiff(out, d["bench.out"])
        loss = (out - d["bench.target"]).pow(2).mean()
        diffs["loss"] = maxdiff(loss.reshape(1), d["bench.loss"])
        opt.zero_grad()
        loss.backward()
        gnorm = torch.nn.utils.clip_grad_norm_(params, float(meta["bench.grad_clip"]))
        diffs["grad_norm_rel"] = abs(gnorm.item() - d["bench.grad_norm"].item()) / max(d["bench.grad_norm"].item(), 1e-12)
        opt.step()
        diffs["weights_after_adamw"] = max(maxdiff(p, d["after." + n]) for n, p in model.named_parameters())
        extra = {"batch": d["bench.xt"].shape[0], "null_labels": int((labels == NULL_CLASS).sum()) if labels is not None else 0}
    elif workload == "ddim-sample":
        images = sample(model, d["bench.labels"], d["bench.noise"], int(meta["bench.sampler_steps"]),
                        float(meta["bench.cfg"]))
        diffs["images"] = maxdiff(images, d["bench.images"])
        extra = {"batch": images.shape[0], "sampler_steps": int(meta["bench.sampler_steps"])}
    else:
        raise SystemExit(f"unet.py: {path}: no bench.workload metadata (write it with retort bench-step --dump)")
    ok = all(v <= tol for v in diffs.values())
    print(json.dumps({"check": workload, "max_abs_diff": diffs, "tol": tol, "ok": ok, **extra}))
    return 0 if ok else 1


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--workload", choices=sorted(DEFAULTS), default="unet-train")
    p.add_argument("--weights", default="")
    p.add_argument("--batch", type=int)
    p.add_argument("--steps", type=int)
    p.add_argument("--warmup", type=int)
    p.add_argument("--sampler-steps", type=int, default=50)
    p.add_argument("--cfg", type=float, default=3.0)
    p.add_argument("--threads", type=int, default=1, help="intra-op threads, as retort's runtime.threads (0 = all)")
    p.add_argument("--check", metavar="DUMP", help="recompute a `bench-step --dump` file and compare")
    p.add_argument("--tol", type=float, default=1e-5)
    p.add_argument("--profile", type=int, default=0, metavar="N",
                   help="also print the top N operators by self CPU time (torch.autograd.profiler) to stderr; "
                        "the ops are retort's too (--check agrees bit for bit)")
    a = p.parse_args()
    # retort's thread policy (core/runtime.cpp): intra-op threads as asked, inter-op 1.
    torch.set_num_threads(a.threads if a.threads > 0 else os.cpu_count())
    torch.set_num_interop_threads(1)
    if a.check:
        sys.exit(check(a.check, a.tol))
    b, s, w = DEFAULTS[a.workload]
    a.batch = a.batch or b
    a.steps = a.steps or s
    a.warmup = w if a.warmup is None else a.warmup
    a.weights = a.weights or DEFAULT_WEIGHTS[a.workload]
    if not os.path.isfile(a.weights):
        raise SystemExit(f"unet.py: --weights {a.weights}: no such file")
    run = unet_train if a.workload == "unet-train" else ddim_sample
    if a.profile:
        with torch.autograd.profiler.profile() as prof:
            result = run(a)
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=a.profile), file=sys.stderr)
    else:
        result = run(a)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
