#!/usr/bin/env python3
"""One iteration of retort's text-to-3D score distillation in plain PyTorch, for the side-by-side
with `retort bench-step --workload generate3d`. Code path for code path the iteration of
`retort generate3d` on configs/text3d.toml (src/retort/text3d/, train/distill_loop.cpp):
  * the generator (text3d/field_generator.cpp): random cameras (render/camera.cpp), a random world
    light per view (render/world.cpp light_from_uniforms), the field rendered differentiably
    (field/volume_render.cpp: box interval, stratified samples, emission-absorption quadrature,
    DreamFusion's deferred shading with finite-difference normals), each image labelled with the
    prompt's class for the camera's view suffix (render/prompt.cpp);
  * the field: Instant-NGP's hash grid + MLP (field/hash_grid.cpp) with the encoding written as
    tensor ops (retort's vectorised path, `bench-step --hash-path tensor`: corner rows and
    trilinear weights as [L,8,N] tensors, a gather with its written-out backward, as a torch
    autograd.Function of tensor ops: no C++ extension), or the dense voxel grid (field/voxel_grid.cpp);
  * the objective (distill/score_distillation.cpp): SDS, VSD or ASD's generator gradient from the
    frozen teacher with classifier-free guidance (the null and conditional passes in one batched
    call, in inference mode) as the surrogate 1/2 mean ||x0 - stopgrad(x0 - grad)||^2, plus the
    opacity regularisers; Adam on the field (betas 0.9 / 0.99), the global gradient norm;
  * VSD / ASD: critic_steps updates of phi, the teacher queried with one learnable condition
    embedding per view suffix (models/fake_score.cpp ClassEmbeddingFake: textual inversion), its
    denoising loss (+ gamma x the teacher-target term for ASD), AdamW, clipping at critic_grad_clip.
The teacher is bench/python/unet.py's UNet (retort's weights by name). Every random number comes
from one seeded CPU generator drawn in retort's order (core/rng.cpp); the field's and phi's
initial weights are retort's too (torch.manual_seed(seed) after the teacher, the same inits).

Bit for bit needs more than the same ops, and the code says where it takes care:
  * the autograd engine sums a tensor's gradients in the order its consumers' backward nodes run,
    which follows their creation order; where a tensor feeds three or more ops (the opacity entropy's
    clamped opacity feeds four) the twin creates them in the order GCC evaluates retort's C++
    operands, right to left (`a * b + c * d` builds c * d first);
  * gradient clipping as LibTorch's C++ clip_grad_norm_ (one norm is not re-normed; max_norm / x is
    a division, not Python's x.reciprocal() * max_norm);
  * the same intra-op thread count as the dump's (--threads; reductions split by thread).

  generate3d.py [--config configs/text3d.toml] [--set generate3d.method="sds" ...] [--steps 20]
                [--warmup 3] [--threads 1] [--keep-freed-memory]
  generate3d.py --check DUMP [--tol T]   # DUMP from `retort bench-step --workload generate3d --dump DUMP`

A timed run prints one JSON line like the C++ command (ms_per_update: the median as bench-step
takes it, the upper middle of the sorted times, of the timed iterations, each timed from the
generator's draw to the end of the last critic step, as DistillLoopOptions::on_update; the loop's
length, which the t_max anneal follows, is warmup + steps as bench-step's).
--check starts from the dump's weights (phi's start must equal the teacher's embedding of the
prompt's view classes), replays the dump's recorded draws, recomputes the iteration and prints the
largest differences of every module's weights after it (absolute) and of the gradients it leaves
(relative to each module's largest component), and whether all are bit for bit; exit 1 when one
exceeds --tol. A dump of retort's tensor path agrees bit for bit; the default kernel path sums in
its own order (tests/scripts/generate3d_twin.sh says by how much).
Without --keep-freed-memory a timed run is a plain PyTorch program: glibc returns every large
temporary to the kernel and the next iteration page-faults it in again, which costs this workload
several times its compute (retort keeps freed memory by default: runtime.keep_freed_memory).
"""
import argparse
import ctypes
import json
import math
import os
import statistics
import struct
import sys
import time
import types

try:
    import tomllib  # Python 3.11
except ImportError:
    raise SystemExit("generate3d.py: needs Python >= 3.11 (tomllib reads the config)")

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import unet  # noqa: E402  (sets retort's BLAS thread policy before torch loads)
from unet import (NULL_CLASS, Rng, clip, compare_after, load_model, load_safetensors, maxdiff, per_sample, set_lr,  # noqa: E402
                  time_features)

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

DEFAULT_CONFIG = "configs/text3d.toml"
DEG = math.pi / 180.0

# render/world.h, render/camera.h View, render/prompt.h
SHAPES = ["sphere", "cube", "torus", "cone", "cylinder", "capsule"]
COLOURS = ["red", "orange", "yellow", "green", "cyan", "blue", "purple", "grey"]
NUM_VIEWS = 4  # front, side, back, overhead
NUM_PROMPT_CLASSES = len(SHAPES) * len(COLOURS) * NUM_VIEWS

# retort's defaults for keys a config may leave out (text3d/generate3d.h generate3d_loop_defaults and
# generate3d_objective_defaults, FieldGeneratorOptions, render/camera.h CameraRanges, field/hash_grid.h
# HashGridOptions, field/voxel_grid.h VoxelGridOptions). cfg_scale and critic_lr come from the presets
# (apply_generate3d_presets) unless given.
GEN_DEFAULTS = {
    "method": "asd", "fake": "embedding", "steps": 600, "batch": 1, "critic_steps": 1, "share_noise": True,
    "lr": 1e-2, "grad_clip": 0.0, "critic_grad_clip": 10.0, "t_min": 0.02, "t_max": 0.98,
    "anneal": "step", "anneal_to": 0.5, "anneal_at": 0.2, "log_every": 10, "checkpoint_every": 100,
    "max_nonfinite_skips": 0, "gamma": -0.75, "weighting": "sigma2", "resolution": 32, "samples": 64,
    "stratified": True, "sparsity_weight": 0.0, "opaque_weight": 0.0, "shading": False, "ambient": 0.3,
    "textureless": 0.0, "normal_eps": 0.01, "coarse_levels": 0, "coarse_until": 0.5, "azimuth": [0.0, 360.0],
    "elevation": [-10.0, 45.0], "distance": [1.0, 1.5], "fovy": [40.0, 70.0], "background": [1.0, 1.0, 1.0],
    "seed": 0, "lora_rank": 4, "lora_alpha": 4.0, "lora_layers": ["attention", "resblocks"],
}
FIELD_DEFAULTS = {
    "kind": "hash", "levels": 12, "log2_table": 15, "features": 2, "base_resolution": 16, "max_resolution": 256,
    "hidden": 64, "hidden_layers": 1, "resolution": 64, "blob_density": 10.0, "blob_radius": 0.25,
}
# --check's default for a dump of the hash grid's kernel path: its backward sums in its own order
# (gradients within ~1e-8 of their largest component, weights after Adam's first step within 6.7e-7;
# tests/scripts/generate3d_twin.sh). The tensor path agrees bit for bit.
KERNEL_TOL = 1e-6
BOUND, INIT_SCALE = 0.5, 1e-4  # HashGridOptions / VoxelGridOptions: not config keys
# What this twin implements; anything else is refused rather than silently timed differently.
CHOICES = {("generate3d", "method"): ["sds", "vsd", "asd"], ("generate3d", "fake"): ["embedding"],
           ("generate3d", "anneal"): ["none", "step", "linear"],
           ("generate3d", "weighting"): ["uniform", "sigma2", "alpha_sigma"], ("field", "kind"): ["hash", "voxel"]}
TOP_KEYS = {"teacher", "prompt", "evaluator", "prompts", "prompts_file", "methods"}  # the others: eval3d's
IGNORED_TABLES = {"output", "runtime", "eval3d"}  # outputs after training; threads come from --threads


def fail(msg):
    raise SystemExit(f"generate3d.py: {msg}")


# ---------------------------------------------------------------- config

def read_config(text, sets, where):
    try:
        root = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        fail(f"{where}: {e}")
    for s in sets:
        key, eq, value = s.partition("=")
        if not eq:
            fail(f"--set {s}: expected [TABLE.]KEY=VALUE")
        try:
            v = tomllib.loads(f"v = {value}")["v"]
        except tomllib.TOMLDecodeError:
            fail(f"--set {s}: the value is not TOML (strings are quoted: generate3d.method=\"sds\")")
        if "." in key:
            table, name = key.split(".", 1)
            root.setdefault(table, {})[name] = v
        else:
            root[key] = v
    if "torchscript" in root:
        fail(f"{where}: [torchscript]: this twin loads retort's safetensors UNet teachers only")
    for k, v in root.items():
        if not isinstance(v, dict) and k not in TOP_KEYS:
            fail(f"{where}: unknown top-level key '{k}'")
        if isinstance(v, dict) and k not in IGNORED_TABLES | {"generate3d", "field"}:
            fail(f"{where}: unknown table [{k}]")
    g_in, f_in = root.get("generate3d", {}), root.get("field", {})
    for table, got, known in (("generate3d", g_in, GEN_DEFAULTS.keys() | {"cfg_scale", "critic_lr"}),
                              ("field", f_in, FIELD_DEFAULTS.keys())):
        for k in got:
            if k not in known:
                fail(f"{where}: [{table}] {k}: not a key retort's generate3d reads")
    g = {**GEN_DEFAULTS, **g_in}
    # apply_generate3d_presets: after method and fake, before the other keys (which may override them).
    g.setdefault("cfg_scale", 100.0 if g["method"] == "sds" else 7.5)
    g.setdefault("critic_lr", 1e-4 if g["fake"] == "copy" else 1e-3)
    fd = {**FIELD_DEFAULTS, **f_in}
    c = {"teacher": root.get("teacher", "weights/world-teacher.safetensors"),
         "prompt": root.get("prompt", "a red torus"), "generate3d": g, "field": fd}
    for (table, key), allowed in CHOICES.items():
        if c[table][key] not in allowed:
            if table == "generate3d" and key == "fake" and g["method"] == "sds":
                continue  # SDS has no phi
            fail(f"{where}: {table}.{key} = {c[table][key]!r}: this twin implements {', '.join(allowed)}")
    if g["max_nonfinite_skips"] != 0:
        fail(f"{where}: generate3d.max_nonfinite_skips = {g['max_nonfinite_skips']}: this twin stops at the first "
             "non-finite loss or gradient (0, retort's default)")
    if g["t_min"] > g["t_max"] or g["batch"] < 1 or g["critic_steps"] < 1:
        fail(f"{where}: need t_min <= t_max, batch >= 1 and critic_steps >= 1")
    if g["coarse_levels"] > 0 and fd["kind"] != "hash":
        fail(f"{where}: generate3d.coarse_levels needs field.kind = \"hash\"")
    if g["coarse_levels"] > fd["levels"]:
        fail(f"{where}: generate3d.coarse_levels = {g['coarse_levels']} exceeds field.levels = {fd['levels']}")
    for k in ("azimuth", "elevation", "distance", "fovy"):
        if len(g[k]) != 2 or g[k][0] > g[k][1]:
            fail(f"{where}: generate3d.{k}: expected [min, max]")
    c["shape"], c["colour"] = parse_prompt(c["prompt"], where)
    return c


def parse_prompt(text, where):
    """"[a|an] COLOUR SHAPE" (render/prompt.cpp; a view suffix is refused: each camera adds its own)."""
    words = text.lower().split()
    if words and words[0] in ("a", "an"):
        words = words[1:]
    if len(words) != 2 or words[0].replace("gray", "grey") not in COLOURS or words[1] not in SHAPES:
        fail(f"{where}: prompt '{text}': expected \"a COLOUR SHAPE\" without a view suffix "
             f"(colours: {', '.join(COLOURS)}; shapes: {', '.join(SHAPES)})")
    return SHAPES.index(words[1]), COLOURS.index(words[0].replace("gray", "grey"))


def prompt_class(shape, colour, view):
    return (shape * len(COLOURS) + colour) * NUM_VIEWS + view


# ---------------------------------------------------------------- randomness (core/rng.cpp)


# ---------------------------------------------------------------- cameras (render/camera.cpp, render/world.cpp)

class Camera:
    def __init__(self, az, el, dist, fovy):
        """look_at_origin: c2w columns right, up, back, position (doubles, stored as float32)."""
        a, e = az * DEG, el * DEG
        back = (math.cos(e) * math.cos(a), math.cos(e) * math.sin(a), math.sin(e))
        right = (-math.sin(a), math.cos(a), 0.0)
        up = (back[1] * right[2] - back[2] * right[1], back[2] * right[0] - back[0] * right[2],
              back[0] * right[1] - back[1] * right[0])
        pos = (back[0] * dist, back[1] * dist, back[2] * dist)
        m = torch.eye(4, dtype=torch.float64)
        for col, v in enumerate((right, up, back, pos)):
            m[0, col], m[1, col], m[2, col] = v
        self.c2w = m.float()
        self.az, self.el, self.dist, self.fovy = az, el, dist, fovy

    def basis(self):
        cols = self.c2w.double()[:3].t().tolist()  # camera_basis reads the float32 c2w as doubles
        return cols[0], cols[1], cols[2], cols[3]

    def rays(self, res):
        """camera_rays: per pixel (row i, column j) the unit direction through its centre, in doubles."""
        right, up, back, pos = self.basis()
        focal = (res / 2.0) / math.tan(self.fovy * DEG / 2)
        c = torch.arange(res, dtype=torch.float64) + 0.5
        x = ((c - res / 2.0) / focal).view(1, res)     # columns
        y = (-(c - res / 2.0) / focal).view(res, 1)    # rows
        d = [x * right[k] + y * up[k] - back[k] for k in range(3)]  # right*x + up*y - back
        inv = torch.ones(res, res, dtype=torch.float64) / (d[0] * d[0] + d[1] * d[1] + d[2] * d[2]).sqrt()
        dirs = torch.stack([d[k] * inv for k in range(3)], 2).reshape(res * res, 3).float()
        origins = torch.tensor(pos, dtype=torch.float64).float().expand(res * res, 3).contiguous()
        return origins, dirs

    def view(self):
        """view_of: overhead above 60 degrees, else by the azimuth wrapped to (-180, 180]."""
        if self.el > 60:
            return 3
        a = math.fmod(self.az, 360.0)
        if a < 0:
            a += 360.0
        if a >= 360.0:
            a = 0.0
        if a > 180:
            a -= 360
        m = abs(a)
        return 0 if m <= 45 else (1 if m < 135 else 2)


def light_from_uniforms(cam, u_az, u_el):
    az = (cam.az + (u_az * 120.0 - 60.0)) * DEG
    el = (20.0 + 50.0 * u_el) * DEG
    return torch.tensor([math.cos(el) * math.cos(az), math.cos(el) * math.sin(az), math.sin(el)], dtype=torch.float32)


# ---------------------------------------------------------------- fields (field/hash_grid.cpp, voxel_grid.cpp)

def blob_density_bias(points, density, radius):
    if density == 0:
        return torch.zeros(points.shape[0], dtype=points.dtype)
    return density * (1 - (points.square().sum(1) + 1e-12).sqrt() / radius)


def flat_index(rows, features):
    f = torch.arange(features, dtype=rows.dtype).view(features, 1, 1, 1)
    return (rows.unsqueeze(0) * features + f).reshape(-1)  # [F*L*8*N]


class HashGather(torch.autograd.Function):
    """out[f,l,n] = sum_c w[l,c,n] table[rows[l,c,n], f], with retort's written-out backward (one flat
    scatter_add to the table; autograd's own backward of a row gather is index_add, slower on the CPU)."""

    @staticmethod
    def forward(ctx, table, rows, w):
        ctx.save_for_backward(table, rows, w)
        Fd = table.shape[1]
        vals = table.reshape(-1).index_select(0, flat_index(rows, Fd)).view(Fd, rows.shape[0], 8, rows.shape[2])
        return (vals * w.unsqueeze(0)).sum(2)

    @staticmethod
    def backward(ctx, grad):
        table, rows, w = ctx.saved_tensors
        g = grad.unsqueeze(2)
        Fd = table.shape[1]
        idx = flat_index(rows, Fd)
        d_table = d_w = None
        if ctx.needs_input_grad[0]:
            d_table = torch.zeros(table.numel(), dtype=g.dtype).scatter_add_(
                0, idx, (g * w.unsqueeze(0)).reshape(-1)).view_as(table)
        if ctx.needs_input_grad[2]:
            d_w = (table.reshape(-1).index_select(0, idx).view(Fd, rows.shape[0], 8, rows.shape[2]) * g).sum(0)
        return d_table, None, d_w


def rtl_two(frac, a):
    """stack({1 - frac[a], frac[a]}) as retort's two(1 - frac[0], frac[0]) builds it: GCC evaluates the
    arguments right to left."""
    hi = frac[a]
    return torch.stack([1 - frac[a], hi])


class HashGridEncoding(nn.Module):
    def __init__(self, f):
        super().__init__()
        L, T, base, top = f["levels"], f["log2_table"], f["base_resolution"], f["max_resolution"]
        if L < 1 or f["features"] < 1 or not 4 <= T <= 30 or base < 1 or top < base:
            fail("field: need levels >= 1, features >= 1, 4 <= log2_table <= 30, 1 <= base_resolution <= max_resolution")
        size = 1 << T
        growth = math.exp(math.log(top / base) / (L - 1)) if L > 1 else 1.0
        self.levels, offset = [], 0  # (resolution, dense, offset)
        for l in range(L):
            res = int(math.floor(base * math.pow(growth, l) + 1e-6))
            verts = (res + 1) ** 3
            self.levels.append((res, verts <= size, offset))
            offset += min(verts, size)
        self.L, self.F, self.mask = L, f["features"], size - 1
        self.table = nn.Parameter(torch.empty(offset, self.F).uniform_(-INIT_SCALE, INIT_SCALE))

    def forward(self, points):
        """forward_vectorised: [N,3] -> [N, L*F], level-major."""
        N = points.shape[0]
        unit = ((points.to(self.table.dtype) / BOUND + 1) * 0.5).clamp(0, 1).t().contiguous()  # [3,N]
        rows, weights = [], []
        for res, dense, offset in self.levels:
            pos = unit * float(res)
            base = pos.floor().clamp_max(float(res - 1))  # points on the far face use the last cell
            frac = pos - base
            b = base.to(torch.int64)
            cx, cy, cz = (torch.stack([b[a], b[a] + 1]) for a in range(3))
            if dense:
                n = res + 1
                row = (cz * (n * n)).view(2, 1, 1, N) + (cy * n).view(1, 2, 1, N) + cx.view(1, 1, 2, N)
            else:  # Instant-NGP's hash; the low T bits of the int64 products are uint32 arithmetic's
                hz = torch.bitwise_and(cz * 805459861, self.mask)
                hy = torch.bitwise_and(cy * 2654435761, self.mask)
                row = torch.bitwise_xor(torch.bitwise_xor(hz.view(2, 1, 1, N), hy.view(1, 2, 1, N)), cx.view(1, 1, 2, N))
                row = torch.bitwise_and(row, self.mask)
            rows.append(row.view(8, N) + offset)
            wx, wy, wz = (rtl_two(frac, a) for a in range(3))
            vx = wx.view(1, 1, 2, N)
            vy = wy.view(1, 2, 1, N)
            weights.append((wz.view(2, 1, 1, N) * vy * vx).view(8, N))
        w = torch.stack(weights).to(self.table.dtype).contiguous()
        out = HashGather.apply(self.table.contiguous(), torch.stack(rows).contiguous(), w)  # [F,L,N]
        return out.permute(2, 1, 0).reshape(N, self.L * self.F)


class HashGridField(nn.Module):
    """density = softplus(mlp_0 + blob), rgb = sigmoid(mlp_1..3)."""

    def __init__(self, f):
        super().__init__()
        self.bound, self.f = BOUND, f
        self.encoding = HashGridEncoding(f)
        layers, width = [], self.encoding.L * self.encoding.F
        for _ in range(f["hidden_layers"]):
            layers += [nn.Linear(width, f["hidden"]), nn.ReLU()]
            width = f["hidden"]
        layers.append(nn.Linear(width, 4))
        self.mlp = nn.Sequential(*layers)
        self.active_levels = f["levels"]

    def query(self, points):
        features = self.encoding(points)
        if self.active_levels < self.f["levels"]:
            mask = torch.zeros(features.shape[1], dtype=features.dtype)
            mask[:self.active_levels * self.f["features"]] = 1
            features = features * mask
        out = self.mlp(features)
        bias = blob_density_bias(points.to(out.dtype), self.f["blob_density"], self.f["blob_radius"])
        return F.softplus(out.select(1, 0) + bias), torch.sigmoid(out[:, 1:4])


class VoxelGrid(nn.Module):
    def __init__(self, f):
        super().__init__()
        R = f["resolution"]
        if R < 2:
            fail(f"field.resolution = {R}: the voxel grid needs >= 2")
        self.bound, self.f = BOUND, f
        self.density = nn.Parameter(torch.zeros(1, 1, R, R, R))
        self.color = nn.Parameter(torch.zeros(1, 3, R, R, R))

    def interpolate(self, grid, points):
        g = (points / self.bound).clamp(-1, 1).to(grid.dtype).view(1, 1, 1, -1, 3)
        out = F.grid_sample(grid, g, mode="bilinear", padding_mode="border", align_corners=True)
        return out.view(grid.shape[1], -1).t()

    def query(self, points):
        raw = self.interpolate(self.density, points).squeeze(1)
        bias = blob_density_bias(points.to(raw.dtype), self.f["blob_density"], self.f["blob_radius"])
        return F.softplus(raw + bias), torch.sigmoid(self.interpolate(self.color, points))


# ---------------------------------------------------------------- volume rendering (field/volume_render.cpp)

def box_interval(o, d, bound):
    tiny = torch.where(d < 0, torch.full_like(d, -1e-12), torch.full_like(d, 1e-12))
    safe = torch.where(d.abs() < 1e-12, tiny, d)
    t0, t1 = (-bound - o) / safe, (bound - o) / safe
    near = torch.minimum(t0, t1).amax(1).clamp_min(0)
    far = torch.maximum(t0, t1).amin(1)
    hit = far > near
    return torch.where(hit, near, torch.zeros_like(near)), torch.where(hit, far, torch.zeros_like(far))


def density_normals(field, points, eps):
    N = points.shape[0]
    offsets = torch.eye(3, dtype=points.dtype) * eps
    probes = torch.cat([points.unsqueeze(1) + offsets, points.unsqueeze(1) - offsets], 1)  # [N,6,3]
    sigma = field.query(probes.clamp(-field.bound, field.bound).reshape(N * 6, 3))[0].view(N, 6)
    minus = sigma[:, 3:6]
    grad = sigma[:, 0:3] - minus
    norm = grad.norm(2, 1, True).clamp_min(1e-12)
    return -grad / norm


def render_rays(field, origins, dirs, samples, rng, background, shading):
    """rgb [R,3], opacity [R]; shading None or (light [3], ambient, textureless, normal_eps)."""
    R, S, bound = origins.shape[0], samples, field.bound
    near, far = box_interval(origins, dirs, bound)
    delta = (far - near) / float(S)
    u = rng.rand((R, S)).to(origins.dtype) if rng is not None else torch.full((R, S), 0.5, dtype=origins.dtype)
    steps = torch.arange(S, dtype=origins.dtype).unsqueeze(0)
    t = near.unsqueeze(1) + (steps + u) * delta.unsqueeze(1)
    points = (origins.unsqueeze(1) + t.unsqueeze(2) * dirs.unsqueeze(1)).clamp(-bound, bound)
    density, colour = field.query(points.reshape(R * S, 3))
    sigma, rgb = density.view(R, S), colour.view(R, S, 3)
    tau = sigma * delta.to(sigma.dtype).unsqueeze(1)
    excl = torch.cat([torch.zeros(R, 1, dtype=tau.dtype), tau.cumsum(1)[:, 0:S - 1]], 1)
    transmit = 1 - torch.exp(-tau)
    weights = torch.exp(-excl) * transmit
    opacity = weights.sum(1)
    bg = background.to(rgb.dtype)
    if bg.dim() == 1:
        bg = bg.unsqueeze(0)
    depth = (weights * t.to(weights.dtype)).sum(1)
    if shading is None:
        behind = (1 - opacity).unsqueeze(1) * bg
        return (weights.unsqueeze(2) * rgb).sum(1) + behind, opacity
    light, ambient, textureless, normal_eps = shading
    albedo = opacity.unsqueeze(1).expand(R, 3) if textureless else (weights.unsqueeze(2) * rgb).sum(1)
    surface = (origins + (depth / opacity.clamp_min(1e-6)).unsqueeze(1) * dirs).clamp(-bound, bound)
    normal = density_normals(field, surface, normal_eps)
    shade = ambient + (1 - ambient) * (normal * light.to(normal.dtype).reshape(1, 3)).sum(1).clamp_min(0)
    behind = (1 - opacity).unsqueeze(1) * bg
    return shade.unsqueeze(1) * albedo + behind, opacity


class FieldGenerator(nn.Module):
    """text3d/field_generator.cpp: parameter names as retort's ("field.encoding.table", ...)."""

    def __init__(self, c):
        super().__init__()
        self.g, self.shape, self.colour = c["generate3d"], c["shape"], c["colour"]
        self.field = HashGridField(c["field"]) if c["field"]["kind"] == "hash" else VoxelGrid(c["field"])
        if not 0 < self.g["coarse_until"] <= 1:
            fail(f"generate3d.coarse_until = {self.g['coarse_until']} must be in (0, 1]")
        self.background = torch.tensor(self.g["background"], dtype=torch.float32)
        self.last_opacity = None

    def set_progress(self, step, steps):
        if isinstance(self.field, HashGridField):
            L, c = self.field.f["levels"], self.g["coarse_levels"]
            if c == 0 or steps <= 0:
                self.field.active_levels = L
            else:
                done = step / (self.g["coarse_until"] * steps)
                self.field.active_levels = min(L, c + int(math.floor((L - c) * done)))

    def random_camera(self, rng):
        a = rng.rand((4,)).to(torch.float64).tolist()
        lerp = [lo + (hi - lo) * x for (lo, hi), x in
                zip((self.g["azimuth"], self.g["elevation"], self.g["distance"], self.g["fovy"]), a)]
        return Camera(*lerp)

    def random_shading(self, cam, rng):
        if not self.g["shading"]:
            return None  # no draws when unshaded
        a = rng.rand((3,)).to(torch.float64).tolist()
        return (light_from_uniforms(cam, a[0], a[1]), self.g["ambient"], a[2] < self.g["textureless"],
                self.g["normal_eps"])

    def draw(self, batch, rng):
        cams = [self.random_camera(rng) for _ in range(batch)]
        lights = [self.random_shading(cam, rng) for cam in cams]
        res = self.g["resolution"]
        images, labels, opacities = [], [], []
        for cam, sh in zip(cams, lights):
            origins, dirs = cam.rays(res)
            rgb, opacity = render_rays(self.field, origins, dirs, self.g["samples"],
                                       rng if self.g["stratified"] else None, self.background, sh)
            images.append(rgb.t().reshape(3, res, res) * 2 - 1)
            opacities.append(opacity.reshape(res, res))
            labels.append(prompt_class(self.shape, self.colour, cam.view()))
        self.last_opacity = torch.stack(opacities)
        return torch.stack(images), torch.tensor(labels, dtype=torch.int64)

    def regularization(self):
        g = self.g
        if self.last_opacity is None or (g["sparsity_weight"] == 0 and g["opaque_weight"] == 0):
            return None
        o = self.last_opacity
        r = torch.zeros((), dtype=o.dtype)
        if g["sparsity_weight"] != 0:
            r = r + g["sparsity_weight"] * (o.square() + 0.01).sqrt().mean()
        if g["opaque_weight"] != 0:
            # -(o log o + (1 - o) log(1 - o)).mean() with its operands built in the order GCC builds
            # retort's (right to left): oc feeds four ops, and the autograd engine sums their gradients
            # in their nodes' order (left to right was 1e-8 of the largest gradient off).
            oc = o.clamp(1e-3, 1 - 1e-3)
            log_1m = (1 - oc).log()
            rhs = (1 - oc) * log_1m
            log_o = oc.log()
            r = r + g["opaque_weight"] * (-(oc * log_o + rhs).mean())
        return r


# ---------------------------------------------------------------- teacher and phi (models/unet.cpp, fake_score.cpp)

def _embed(self, t, cond, batch):
    """UNetImpl::embed with Cond::embedding: `cond` is the labels, or (labels, embedding) where the
    embedding replaces the label's (textual inversion)."""
    emb = self.time_mlp(time_features(t, self.time_dim))
    labels, embedding = cond if isinstance(cond, tuple) else (cond, None)
    if embedding is not None:
        return emb + embedding
    idx = labels if labels is not None else torch.full((batch,), NULL_CLASS, dtype=torch.int64)
    idx = torch.where(idx == NULL_CLASS, torch.full_like(idx, self.num_classes), idx)
    return emb + self.class_embed(idx)


class ClassEmbeddingFake(nn.Module):
    """phi: one learnable condition embedding per view suffix, from the teacher's own (not registered)."""

    def __init__(self, teacher, classes):
        super().__init__()
        self.base, self.classes = [teacher], classes
        with torch.no_grad():
            e = teacher.net.class_embed(torch.tensor(classes, dtype=torch.int64)).detach().clone()
        self.phi = nn.Parameter(e)

    def eps(self, xt, t, labels):
        rows = [self.classes.index(v) for v in labels.tolist()]
        emb = self.phi.index_select(0, torch.tensor(rows, dtype=torch.int64))
        return self.base[0].eps(xt, t, (labels, emb))


# ---------------------------------------------------------------- the iteration

class Generate3d:
    def __init__(self, c):
        g = c["generate3d"]
        self.c, self.g = c, g
        if not os.path.isfile(c["teacher"]):
            fail(f"teacher {c['teacher']}: no such file (run from the repository root)")
        if c["teacher"].endswith(".pt"):
            fail(f"teacher {c['teacher']}: a TorchScript teacher; this twin loads retort's safetensors UNets")
        self.teacher, _, _ = load_model(c["teacher"])
        if self.teacher.num_classes != NUM_PROMPT_CLASSES or self.teacher.shape[0] != 3:
            fail(f"teacher {c['teacher']}: expected an RGB teacher with {NUM_PROMPT_CLASSES} prompt classes")
        if self.teacher.shape[1] != g["resolution"]:
            fail(f"generate3d.resolution = {g['resolution']} but the teacher takes {self.teacher.shape[1]} px")
        self.teacher.net.embed = types.MethodType(_embed, self.teacher.net)
        self.teacher.requires_grad_(False).eval()
        self.schedule = self.teacher.schedule
        torch.manual_seed(g["seed"])  # run_generate3d: after the teacher, before the field
        self.gen = FieldGenerator(c)
        self.method = g["method"]
        self.fake = None
        if self.method != "sds":
            self.fake = ClassEmbeddingFake(self.teacher, [prompt_class(c["shape"], c["colour"], v)
                                                          for v in range(NUM_VIEWS)])
        self.gen_params = [p for p in self.gen.parameters() if p.requires_grad]
        self.gen_opt = torch.optim.AdamW(self.gen_params, lr=g["lr"], betas=(0.9, 0.99), weight_decay=0.0)
        self.critic_params, self.critic_opt = [], None
        if self.fake is not None:
            self.critic_params = [p for p in self.fake.parameters() if p.requires_grad]
            self.critic_opt = torch.optim.AdamW(self.critic_params, lr=g["critic_lr"], betas=(0.9, 0.999),
                                                weight_decay=0.0)
        self.step, self.total = 0, g["steps"]
        self.stats = {}

    # -- diffusion times and noise (distill_loop.cpp draw_noise, diffusion/timesteps.cpp)
    def draw_noise(self, x0, rng):
        g = self.g
        frac = self.step / self.total if self.total > 0 else 0.0
        hi = g["t_max"]
        if g["anneal"] == "step" and frac >= g["anneal_at"]:
            hi = g["anneal_to"]
        if g["anneal"] == "linear":
            hi = g["t_max"] + (g["anneal_to"] - g["t_max"]) * min(1.0, frac)
        lo, hi = g["t_min"], max(g["t_min"], hi)
        t = lo + (hi - lo) * rng.rand((x0.shape[0],))
        return self.schedule.snap(t), rng.randn(tuple(x0.shape))

    def noisy(self, x0, t, eps):
        abar = self.schedule.alpha_bar(t)
        a, s = abar.sqrt(), (1 - abar).sqrt()
        return per_sample(a, x0) * x0 + per_sample(s, x0) * eps, a, s

    def time_weight(self, alpha, sigma):
        w = self.g["weighting"]
        return sigma * sigma if w == "sigma2" else (alpha * sigma if w == "alpha_sigma" else torch.ones_like(alpha))

    def teacher_eps(self, xt, t, labels):
        return self.teacher.eps(xt, t, labels)

    # -- ScoreDistillation::generator_grad / GradientObjective::generator_loss
    def generator_loss(self, x0, labels, t, eps):
        with torch.inference_mode():
            x0d = x0.detach()
            xt, alpha, sigma = self.noisy(x0d, t, eps)
            e_real = unet.eps_cfg(self.teacher, xt, t, labels, self.g["cfg_scale"])
            e_ref = eps if self.method == "sds" else self.fake.eps(xt, t, labels)
            grad = per_sample(self.time_weight(alpha, sigma), x0d) * (e_real - e_ref)
        self.stats["grad_norm"] = grad.flatten(1).norm(2, 1).mean().item()
        return 0.5 * (x0 - (x0 - grad).detach()).pow(2).mean()

    # -- ScoreDistillation::critic_loss, DistillLoop::critic_update
    def critic_update(self, shared, k, rng):
        g = self.g
        if k == 0 and g["share_noise"]:
            x0, labels, (t, eps) = shared[0].detach(), shared[1], shared[2]
        else:
            with torch.no_grad():
                x0, labels = self.gen.draw(g["batch"], rng)
            x0 = x0.detach()
            t, eps = self.draw_noise(x0, rng)
        xg = self.noisy(x0, t, eps)[0]
        e_phi = self.fake.eps(xg, t, labels)
        loss = (e_phi - eps).pow(2).mean()
        if self.method == "asd":
            with torch.inference_mode():
                target = self.teacher_eps(xg, t, labels)
            loss = loss + g["gamma"] * (target - e_phi).pow(2).mean()
        value = loss.item()
        if not math.isfinite(value):
            fail(f"step {self.step}: critic loss in {self.method} is {value} (max_nonfinite_skips = 0)")
        self.critic_opt.zero_grad()
        loss.backward()
        norm = clip(self.critic_params, g["critic_grad_clip"])
        if not math.isfinite(norm):
            fail(f"step {self.step}: critic gradient norm is {norm}")
        set_lr(self.critic_opt, g["critic_lr"])
        self.critic_opt.step()
        self.stats["critic_loss"], self.stats["critic_grad_norm"] = value, norm

    # -- one iteration (DistillLoop::run's loop body)
    def update(self, rng):
        g = self.g
        self.gen.set_progress(self.step, self.total)
        x0, labels = self.gen.draw(g["batch"], rng)
        t, eps = self.draw_noise(x0, rng)
        gen_loss = self.generator_loss(x0, labels, t, eps)
        gl = gen_loss.item()
        reg = self.gen.regularization()
        self.stats["regularization"] = reg.item() if reg is not None else 0.0
        if not math.isfinite(gl):
            fail(f"step {self.step}: generator loss in {self.method} is {gl} (max_nonfinite_skips = 0)")
        self.gen_opt.zero_grad()
        (gen_loss + reg if reg is not None else gen_loss).backward()
        gnorm = clip(self.gen_params, g["grad_clip"])
        if not math.isfinite(gnorm):
            fail(f"step {self.step}: generator gradient norm is {gnorm}")
        set_lr(self.gen_opt, g["lr"])
        self.gen_opt.step()
        if self.critic_opt is not None:
            for k in range(g["critic_steps"]):
                self.critic_update((x0, labels, (t, eps)), k, rng)
        self.step += 1
        self.stats["gen_loss"], self.stats["gen_grad_norm"] = gl, gnorm
        return gl


# ---------------------------------------------------------------- timed run

def timed(a):
    if not os.path.isfile(a.config):
        fail(f"--config {a.config}: no such file (run from the repository root)")
    with open(a.config, "rb") as f:
        c = read_config(f.read().decode(), a.set, a.config)
    c["generate3d"]["steps"] = a.warmup + a.steps  # bench-step: the loop is as long as the timed run
    m = Generate3d(c)
    rng = Rng(c["generate3d"]["seed"])
    ms = []
    for i in range(a.warmup + a.steps):
        t0 = time.perf_counter()
        m.update(rng)
        if i >= a.warmup:
            ms.append(1000 * (time.perf_counter() - t0))
    g, fd = c["generate3d"], c["field"]
    s = sorted(ms)
    return {"impl": "pytorch", "workload": "generate3d", "config": a.config, "sets": a.set, "method": g["method"],
            "fake": g["fake"], "field": fd["kind"], "hash_path": "tensor" if fd["kind"] == "hash" else None,
            "views": g["batch"], "resolution": g["resolution"], "samples": g["samples"], "shading": g["shading"],
            "teacher": c["teacher"], "ms_per_update": s[len(s) // 2], "ms_mean": statistics.mean(ms),
            "ms_min": s[0], "ms_max": s[-1], "updates": a.steps, "warmup": a.warmup,
            "threads": torch.get_num_threads(), "torch": torch.__version__}


# ---------------------------------------------------------------- --check

def check(path, tol):
    if not os.path.isfile(path):
        fail(f"--check {path}: no such file")
    try:
        tensors, meta = load_safetensors(path)
    except (ValueError, KeyError, MemoryError, struct.error) as e:
        fail(f"--check {path}: not a safetensors file ({type(e).__name__})")
    if meta.get("bench.workload") != "generate3d":
        fail(f"{path}: not a generate3d dump (write one with retort bench-step --workload generate3d --dump)")
    unet.require_libtorch_ops(path, meta)
    c = read_config(meta["bench.config"], [], f"{path}: bench.config")
    hash_path = meta.get("bench.hash_path")
    if tol is None:
        tol = KERNEL_TOL if hash_path == "kernel" and c["field"]["kind"] == "hash" else 0.0
    kinds = json.loads(meta["bench.draws"])
    replay = [(k, tensors[f"draw.{i:04d}"]) for i, k in enumerate(kinds)]
    m = Generate3d(c)
    m.total = 1  # the dump is of the loop's update 0: the anneal and coarse-to-fine bounds are their start's
    modules = {"generator": m.gen}
    if m.fake is not None:
        modules["fake"] = m.fake
    order = json.loads(meta["bench.params"])
    if set(order) != set(modules):
        fail(f"{path}: holds modules {sorted(order)}, this twin builds {sorted(modules)}")
    seeded, start = {}, {}
    for name, mod in modules.items():
        mine = [n for n, _ in mod.named_parameters()]
        if mine != order[name]:
            fail(f"{name}: parameters {mine} differ from retort's {order[name]} (gradient norms sum in their order)")
        diff = max(maxdiff(p, tensors[f"start.{name}.{n}"]) for n, p in mod.named_parameters())
        (start if name == "fake" else seeded)[name] = diff
        with torch.no_grad():
            for n, p in mod.named_parameters():
                p.copy_(tensors[f"start.{name}.{n}"])
    rng = Rng(c["generate3d"]["seed"], replay)
    m.update(rng)
    if rng.i != len(replay):
        fail(f"the iteration drew {rng.i} of the dump's {len(replay)} draws")
    diffs, moved, grads, identical = compare_after(modules, tensors, order, "iteration")
    ok = (all(v <= tol for v in diffs.values()) and all(v <= tol for v in grads.values())
          and all(v == 0 for v in start.values()))
    g = c["generate3d"]
    print(json.dumps({"check": "generate3d", "ok": ok, "bit_identical": identical,
                      "max_abs_diff_weights_after": diffs, "max_rel_diff_gradients_after": grads,
                      "weights_moved_by": moved, "max_abs_diff_phi_start_vs_teacher": start,
                      "max_abs_diff_start_vs_seeded_init": seeded, "draws": len(replay),
                      "draws_this_generator_differs": rng.own_mismatches, "method": g["method"],
                      "field": c["field"]["kind"], "views": g["batch"], "critic_steps": g["critic_steps"],
                      "hash_path": hash_path, "gen_loss": m.stats.get("gen_loss"), "tol": tol}))
    if not ok:
        print("generate3d.py: --check: differences above --tol. Dumps to compare bit for bit come from "
              "`bench-step --hash-path tensor --threads N [--conv direct]` checked with --threads N (the twin "
              "runs PyTorch's convolutions, not oneDNN's Winograd kernels); a kernel-path dump needs "
              f"--tol {KERNEL_TOL:g}", file=sys.stderr)
    return 0 if ok else 1


def keep_freed_memory():
    """retort's runtime.keep_freed_memory (core/runtime.cpp, on by default there): glibc keeps freed
    blocks in the process (mallopt M_MMAP_MAX 0, M_TRIM_THRESHOLD 1 GiB) instead of handing each
    large temporary back to the kernel to page-fault in afresh. Returns whether it took."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        return bool(libc.mallopt(-4, 0)) and bool(libc.mallopt(-1, 1 << 30))  # M_MMAP_MAX, M_TRIM_THRESHOLD
    except (OSError, AttributeError):
        return False


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--config", default=DEFAULT_CONFIG)
    p.add_argument("--set", action="append", default=[], metavar="TABLE.KEY=VALUE",
                   help="override a config key, as bench-step's --set (repeatable)")
    p.add_argument("--steps", type=int, default=20, help="timed iterations (bench-step's default for generate3d)")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--workload", choices=["generate3d"], default="generate3d", help="for bench-step's flags")
    p.add_argument("--threads", type=int, default=1, help="intra-op threads, as retort's runtime.threads (0 = all)")
    p.add_argument("--check", metavar="DUMP", help="recompute a `bench-step --workload generate3d --dump` file")
    p.add_argument("--keep-freed-memory", action="store_true",
                   help="retort's allocator policy (glibc keeps freed memory; --check always): a plain PyTorch "
                        "program does not, so a timed run is plain unless asked")
    p.add_argument("--tol", type=float, default=None,
                   help="largest difference --check accepts; default 0 (bit for bit: what a --hash-path tensor dump "
                        f"and a voxel field give), {KERNEL_TOL:g} for a dump that says bench.hash_path = kernel")
    a = p.parse_args()
    if a.steps < 1 or a.warmup < 0:
        fail("--steps must be >= 1 and --warmup >= 0")
    torch.set_num_threads(a.threads if a.threads > 0 else os.cpu_count())
    torch.set_num_interop_threads(1)
    kept = keep_freed_memory() if a.keep_freed_memory or a.check else False
    if a.check:
        sys.exit(check(a.check, a.tol))
    print(json.dumps({**timed(a), "keep_freed_memory": kept}))


if __name__ == "__main__":
    main()
