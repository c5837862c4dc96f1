#include "retort/field/volume_render.h"

#include <algorithm>
#include <string>
#include <vector>

#include "retort/core/error.h"

namespace retort {
namespace {

// Slab-method entry and exit distances of each ray with the box; near = far = 0 for a miss.
std::pair<torch::Tensor, torch::Tensor> box_interval(const torch::Tensor& o, const torch::Tensor& d, double bound) {
  // Axis-parallel rays: a tiny same-signed direction keeps 0/0 from turning into NaN.
  auto tiny = torch::where(d < 0, torch::full_like(d, -1e-12), torch::full_like(d, 1e-12));
  auto safe = torch::where(d.abs() < 1e-12, tiny, d);
  auto t0 = (-bound - o) / safe, t1 = (bound - o) / safe;
  auto near = torch::minimum(t0, t1).amax(1).clamp_min(0);  // an origin inside the box starts at 0
  auto far = torch::maximum(t0, t1).amin(1);
  auto hit = far > near;
  return {torch::where(hit, near, torch::zeros_like(near)), torch::where(hit, far, torch::zeros_like(far))};
}

}  // namespace

RenderResult render_rays(RadianceField& field, const torch::Tensor& origins_in, const torch::Tensor& dirs_in,
                         const VolumeRenderOptions& opts) {
  // Rays are made on the CPU (camera_rays) and rendered where the field lives.
  const auto params = field.parameters();
  const auto device = params.empty() ? origins_in.device() : params.front().device();
  const auto origins = origins_in.to(device), dirs = dirs_in.to(device);
  if (origins.dim() != 2 || origins.size(1) != 3 || !origins.sizes().equals(dirs.sizes()))
    throw ConfigError("render_rays: origins and dirs must both be [R,3]");
  if (opts.samples < 1) throw ConfigError("render_rays: samples must be >= 1, got " + std::to_string(opts.samples));
  if (opts.stratified && opts.rng == nullptr) throw ConfigError("render_rays: stratified sampling needs an rng");
  const Shading& sh = opts.shading;
  if (sh.on && (!sh.light.defined() || sh.light.numel() != 3))
    throw ConfigError("render_rays: shading needs a light direction [3]");
  if (sh.on && !(sh.normal_eps > 0)) throw ConfigError("render_rays: shading.normal_eps must be > 0");
  const int64_t R = origins.size(0), S = opts.samples;
  const double bound = field.bound();
  auto [near, far] = box_interval(origins, dirs, bound);
  auto delta = (far - near) / double(S);  // [R]
  auto u = opts.stratified ? opts.rng->rand({R, S}, origins.device()).to(origins.dtype())
                           : torch::full({R, S}, 0.5, origins.options());
  auto steps = torch::arange(S, origins.options()).unsqueeze(0);
  auto t = near.unsqueeze(1) + (steps + u) * delta.unsqueeze(1);  // [R,S] sample distances
  auto points = (origins.unsqueeze(1) + t.unsqueeze(2) * dirs.unsqueeze(1)).clamp(-bound, bound);
  auto sample = field.query(points.reshape({R * S, 3}));
  auto sigma = sample.density.view({R, S});
  auto rgb = sample.rgb.view({R, S, 3});
  auto tau = sigma * delta.to(sigma.dtype()).unsqueeze(1);  // optical depth of each interval
  // exp of an exclusive cumulative sum: no product of many (1 - alpha) factors to underflow.
  auto excl = torch::cat({torch::zeros({R, 1}, tau.options()), tau.cumsum(1).slice(1, 0, S - 1)}, 1);
  auto weights = torch::exp(-excl) * (1 - torch::exp(-tau));
  auto opacity = weights.sum(1);
  auto bg = opts.background.defined() ? opts.background.to(rgb.options()) : torch::ones({3}, rgb.options());
  if (bg.dim() == 1) bg = bg.unsqueeze(0);
  auto depth = (weights * t.to(weights.dtype())).sum(1);
  if (!sh.on) return {(weights.unsqueeze(2) * rgb).sum(1) + (1 - opacity).unsqueeze(1) * bg, opacity, depth, weights, {}};
  auto albedo = sh.textureless ? opacity.unsqueeze(1).expand({R, 3}) : (weights.unsqueeze(2) * rgb).sum(1);
  auto surface = (origins + (depth / opacity.clamp_min(1e-6)).unsqueeze(1) * dirs).clamp(-bound, bound);
  auto normal = density_normals(field, surface, sh.normal_eps);
  auto light = sh.light.to(normal.options()).reshape({1, 3});
  auto shade = sh.ambient + (1 - sh.ambient) * (normal * light).sum(1).clamp_min(0);
  auto color = shade.unsqueeze(1) * albedo + (1 - opacity).unsqueeze(1) * bg;
  return {color, opacity, depth, weights, normal};
}

torch::Tensor density_normals(RadianceField& field, const torch::Tensor& points, double eps) {
  const int64_t N = points.size(0);
  auto offsets = torch::eye(3, points.options()) * eps;                      // [3,3]
  auto probes = torch::cat({points.unsqueeze(1) + offsets, points.unsqueeze(1) - offsets}, 1);  // [N,6,3]
  const double bound = field.bound();
  auto sigma = field.query(probes.clamp(-bound, bound).reshape({N * 6, 3})).density.view({N, 6});
  auto grad = sigma.slice(1, 0, 3) - sigma.slice(1, 3, 6);  // 2 eps * gradient; the scale cancels
  return -grad / grad.norm(2, 1, true).clamp_min(1e-12);
}

torch::Tensor render_image(RadianceField& field, const Rays& rays, int64_t res, const VolumeRenderOptions& opts,
                           int64_t chunk) {
  if (rays.origins.dim() != 2 || rays.origins.size(0) != res * res || rays.origins.size(1) != 3 ||
      !rays.origins.sizes().equals(rays.dirs.sizes()))
    throw ConfigError("render_image: rays must be [res*res,3]");
  if (chunk < 1) throw ConfigError("render_image: chunk must be >= 1");
  const int64_t H = res, W = res;
  auto o = rays.origins.reshape({H * W, 3}), d = rays.dirs.reshape({H * W, 3});
  std::vector<torch::Tensor> parts;
  for (int64_t s = 0; s < H * W; s += chunk) {
    const int64_t e = std::min(H * W, s + chunk);
    VolumeRenderOptions co = opts;
    if (co.background.defined() && co.background.dim() == 2) co.background = co.background.slice(0, s, e);
    parts.push_back(render_rays(field, o.slice(0, s, e), d.slice(0, s, e), co).rgb);
  }
  return torch::cat(parts, 0).view({H, W, 3}).permute({2, 0, 1}).contiguous();
}

torch::Tensor opacity_sparsity_loss(const torch::Tensor& opacity) {
  return (opacity.square() + 0.01).sqrt().mean();
}

torch::Tensor opacity_entropy_loss(const torch::Tensor& opacity) {
  auto o = opacity.clamp(1e-3, 1 - 1e-3);
  return -(o * o.log() + (1 - o) * (1 - o).log()).mean();
}

}  // namespace retort
