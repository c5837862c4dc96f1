#include "retort/nvs/point_cloud.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "retort/core/error.h"
#include "retort/run/run_folder.h"

namespace retort {
namespace {

using torch::indexing::Slice;

std::vector<int64_t> cloud_sizes_of(const torch::Tensor& t) { return t.defined() ? t.sizes().vec() : std::vector<int64_t>{}; }

// Basis rows of K cameras as double tensors: right, up, back [K,3], position [K,3], focal [K].
struct SplatBases {
  torch::Tensor right, up, back, position, focal;
};
SplatBases splat_bases(const std::vector<Camera>& cams, int64_t res) {
  const auto K = int64_t(cams.size());
  auto r = torch::empty({K, 3}, torch::kDouble), u = torch::empty({K, 3}, torch::kDouble),
       b = torch::empty({K, 3}, torch::kDouble), p = torch::empty({K, 3}, torch::kDouble),
       f = torch::empty({K}, torch::kDouble);
  auto ra = r.accessor<double, 2>(), ua = u.accessor<double, 2>(), ba = b.accessor<double, 2>(),
       pa = p.accessor<double, 2>();
  auto fa = f.accessor<double, 1>();
  for (int64_t k = 0; k < K; ++k) {
    const auto cb = camera_basis(cams[size_t(k)], res);
    const Vec3* v[4] = {&cb.right, &cb.up, &cb.back, &cb.position};
    decltype(ra)* acc[4] = {&ra, &ua, &ba, &pa};
    for (int c = 0; c < 4; ++c) {
      (*acc[c])[k][0] = v[c]->x;
      (*acc[c])[k][1] = v[c]->y;
      (*acc[c])[k][2] = v[c]->z;
    }
    fa[k] = cb.focal;
  }
  return {r, u, b, p, f};
}

// Row-wise dot product of [...,3] with [...,3], as three products and two sums (no BLAS, so the
// result is the same on any thread count).
torch::Tensor splat_dot3(const torch::Tensor& a, const torch::Tensor& b) {
  return a.select(-1, 0) * b.select(-1, 0) + a.select(-1, 1) * b.select(-1, 1) + a.select(-1, 2) * b.select(-1, 2);
}

}  // namespace

PointCloud unproject(const torch::Tensor& image, const torch::Tensor& depth, const Camera& cam) {
  if (!image.defined() || image.dim() != 3 || image.size(0) != 3 || image.size(1) != image.size(2))
    throw Error(fmt::format("unproject: image must be [3,R,R], got {}", cloud_sizes_of(image)));
  const int64_t R = image.size(1);
  if (!depth.defined() || depth.dim() != 2 || depth.size(0) != R || depth.size(1) != R)
    throw Error(fmt::format("unproject: depth must be [{},{}] like the image, got {}", R, R, cloud_sizes_of(depth)));
  const auto b = camera_basis(cam, R);
  auto z = depth.to(torch::kCPU, torch::kDouble).reshape({R * R});
  auto keep = torch::isfinite(z) & (z > 0);
  auto idx = keep.nonzero().squeeze(1);
  z = z.index({idx});
  auto i = torch::div(idx, R, "floor").to(torch::kDouble), j = torch::remainder(idx, R).to(torch::kDouble);
  auto x = (j + 0.5 - R / 2.0) / b.focal, y = -(i + 0.5 - R / 2.0) / b.focal;
  auto vec = [](const Vec3& v) { return vec3_tensor(v, torch::kDouble); };
  auto dir = x.unsqueeze(1) * vec(b.right) + y.unsqueeze(1) * vec(b.up) - vec(b.back);
  auto pts = vec(b.position) + z.unsqueeze(1) * dir;
  PointCloud pc;
  pc.points = pts.to(torch::kFloat).contiguous();
  pc.colours = image.to(torch::kCPU, torch::kFloat).reshape({3, R * R}).index({Slice(), idx}).t().contiguous();
  pc.spacing = (z / b.focal).to(torch::kFloat).contiguous();
  return pc;
}

PointCloud concat(const std::vector<PointCloud>& clouds) {
  std::vector<torch::Tensor> p, c, s;
  for (const auto& pc : clouds) {
    p.push_back(pc.points);
    c.push_back(pc.colours);
    s.push_back(pc.spacing);
  }
  if (p.empty()) throw Error("concat: no point clouds");
  return {torch::cat(p), torch::cat(c), torch::cat(s)};
}

PointRenders render_points(const PointCloud& pc, const std::vector<Camera>& cams, int64_t R, const SplatOptions& o) {
  if (cams.empty()) throw Error("render_points: no cameras");
  if (R < 1) throw Error(fmt::format("render_points: resolution {} must be positive", R));
  if (!(o.footprint >= 0) || o.max_radius < 0 || o.max_radius > 8)
    throw Error(fmt::format("render_points: footprint {} must be >= 0 and max_radius {} in [0, 8]", o.footprint,
                            o.max_radius));
  const auto K = int64_t(cams.size());
  const int64_t N = pc.size(), P = R * R;
  PointRenders out;
  out.images = torch::zeros({K, 3, R, R}, torch::kFloat);  // replaced below when there are points
  out.masks = torch::zeros({K, R, R}, torch::kFloat);
  out.depth = torch::full({K, R, R}, std::numeric_limits<float>::infinity(), torch::kFloat);
  if (N == 0) return out;
  if (pc.points.dim() != 2 || pc.points.size(1) != 3 || pc.colours.sizes() != pc.points.sizes() ||
      pc.spacing.dim() != 1 || pc.spacing.size(0) != N)
    throw Error(fmt::format("render_points: cloud tensors {} / {} / {} do not match", cloud_sizes_of(pc.points),
                            cloud_sizes_of(pc.colours), cloud_sizes_of(pc.spacing)));

  const auto B = splat_bases(cams, R);
  auto pts = pc.points.to(torch::kDouble).unsqueeze(0);            // [1,N,3]
  auto rel = pts - B.position.unsqueeze(1);                         // [K,N,3]
  auto x = splat_dot3(rel, B.right.unsqueeze(1)), y = splat_dot3(rel, B.up.unsqueeze(1));
  auto z = -splat_dot3(rel, B.back.unsqueeze(1));                         // [K,N]
  auto f = B.focal.unsqueeze(1);
  auto valid = z > 1e-6;
  auto zs = torch::where(valid, z, torch::ones_like(z));
  const double lim = 4.0 * R + 8;  // far off-image points are clamped before the integer cast
  auto u = (R / 2.0 + f * x / zs).clamp(-lim, lim), v = (R / 2.0 - f * y / zs).clamp(-lim, lim);
  auto half = 0.5 * o.footprint * f * pc.spacing.to(torch::kDouble).unsqueeze(0) / zs;  // [K,N]

  // Candidate pixels: the landing pixel plus a (2W+1)^2 window, kept where the centre is inside the
  // point's square. A centre d pixels from the landing pixel's is within the square only if
  // |d| <= half + 0.5, so the window is as large as the largest square needs (capped at max_radius).
  int64_t W = 0;
  if (o.footprint > 0) {
    const double widest = torch::where(valid, half, torch::zeros_like(half)).max().item<double>();
    W = std::min<int64_t>(o.max_radius, int64_t(std::floor(widest + 0.5)));
  }
  const int64_t M = (2 * W + 1) * (2 * W + 1);
  auto offs = torch::arange(-W, W + 1, torch::kLong);
  auto dy = offs.repeat_interleave(2 * W + 1), dx = offs.repeat({2 * W + 1});  // [M]
  auto ju = u.floor().to(torch::kLong).unsqueeze(2), iv = v.floor().to(torch::kLong).unsqueeze(2);  // [K,N,1]
  auto cj = ju + dx, ci = iv + dy;  // [K,N,M]
  auto centre_in = ((cj.to(torch::kDouble) + 0.5 - u.unsqueeze(2)).abs() < half.unsqueeze(2)) &
                   ((ci.to(torch::kDouble) + 0.5 - v.unsqueeze(2)).abs() < half.unsqueeze(2));
  auto landing = (dx == 0) & (dy == 0);
  auto keep = valid.unsqueeze(2) & (centre_in | landing) & (cj >= 0) & (cj < R) & (ci >= 0) & (ci < R);
  auto frame = torch::arange(K, torch::kLong).view({K, 1, 1});
  auto flat = (frame * P + ci * R + cj).masked_select(keep);
  auto depth = z.unsqueeze(2).expand({K, N, M}).masked_select(keep);
  auto point = torch::arange(N, torch::kLong).view({1, N, 1}).expand({K, N, M}).masked_select(keep);

  // Z-buffer by sorting: stably by depth, then stably by pixel, so each pixel's run starts with its
  // nearest point (ties: the lower point index, the candidates' order).
  auto by_depth = std::get<1>(torch::sort(depth, /*stable=*/true, 0, false));
  auto by_pixel = std::get<1>(torch::sort(flat.index({by_depth}), /*stable=*/true, 0, false));
  auto order = by_depth.index({by_pixel});
  auto sorted = flat.index({order});
  auto first = torch::ones({sorted.size(0)}, torch::kBool);
  if (sorted.size(0) > 1) first.narrow(0, 1, sorted.size(0) - 1).copy_(sorted.narrow(0, 1, sorted.size(0) - 1) != sorted.narrow(0, 0, sorted.size(0) - 1));
  auto pick = order.masked_select(first);
  auto pix = flat.index({pick}), who = point.index({pick});
  auto rgb = torch::zeros({K * P, 3}, torch::kFloat);
  rgb.index_put_({pix}, pc.colours.to(torch::kFloat).index({who}));
  out.images = rgb.view({K, R, R, 3}).permute({0, 3, 1, 2}).contiguous();
  out.masks.view({K * P}).index_put_({pix}, torch::ones({pix.size(0)}, torch::kFloat));
  out.depth.view({K * P}).index_put_({pix}, depth.index({pick}).to(torch::kFloat));
  return out;
}

std::vector<torch::Tensor> perturb_depths(const std::vector<torch::Tensor>& depths, double noise, double scale_error,
                                          std::mt19937_64& rng) {
  if (!(noise >= 0 && noise <= 0.3)) throw Error(fmt::format("depth noise {} is outside [0, 0.3]", noise));
  if (!(scale_error >= 0 && scale_error <= 0.5))
    throw Error(fmt::format("depth scale error {} is outside [0, 0.5]", scale_error));
  const double s = 1 + scale_error * (2 * uniform01(rng) - 1);
  std::vector<torch::Tensor> out;
  for (const auto& d : depths) {
    auto t = d.to(torch::kCPU, torch::kFloat).contiguous().clone();
    float* p = t.data_ptr<float>();
    for (int64_t k = 0; k < t.numel(); ++k) {
      double e = 0;
      if (noise > 0) {  // Box-Muller, one normal per pixel (drawn for background pixels too, so a
                        // pixel's noise does not depend on which others are background)
        const double u1 = 1.0 - uniform01(rng), u2 = uniform01(rng);
        e = std::clamp(std::sqrt(-2 * std::log(u1)) * std::cos(2 * M_PI * u2), -3.0, 3.0);
      }
      if (std::isfinite(p[k])) p[k] = float(p[k] * s * (1 + noise * e));
    }
    out.push_back(t);
  }
  return out;
}

PointRenders condition_renders(const std::vector<torch::Tensor>& images, const std::vector<torch::Tensor>& depths,
                               const std::vector<Camera>& input_cams, const std::vector<Camera>& trajectory,
                               int64_t res, const SplatOptions& opts) {
  if (images.empty() || images.size() != depths.size() || images.size() != input_cams.size())
    throw Error(fmt::format("condition_renders: {} images, {} depths, {} cameras", images.size(), depths.size(),
                            input_cams.size()));
  std::vector<PointCloud> clouds;
  for (size_t v = 0; v < images.size(); ++v) clouds.push_back(unproject(images[v], depths[v], input_cams[v]));
  auto r = render_points(concat(clouds), trajectory, res, opts);
  r.images[0] = images[0];  // frame 0: the input view itself (ViewCrafter's reference frame)
  r.masks[0].fill_(1);
  return r;
}

void write_ply(const std::filesystem::path& path, const PointCloud& pc) {
  const int64_t N = pc.size();
  std::string text = fmt::format(
      "ply\nformat ascii 1.0\ncomment retort point cloud\nelement vertex {}\nproperty float x\nproperty float y\n"
      "property float z\nproperty uchar red\nproperty uchar green\nproperty uchar blue\nend_header\n",
      N);
  if (N > 0) {
    auto p = pc.points.to(torch::kFloat).contiguous();
    auto c = (pc.colours.to(torch::kFloat).clamp(0, 1) * 255).round().to(torch::kUInt8).contiguous();
    auto pa = p.accessor<float, 2>();
    auto ca = c.accessor<uint8_t, 2>();
    for (int64_t k = 0; k < N; ++k)
      text += fmt::format("{} {} {} {} {} {}\n", pa[k][0], pa[k][1], pa[k][2], ca[k][0], ca[k][1], ca[k][2]);
  }
  write_text_atomic(path, text);  // IoError naming the file
}

}  // namespace retort
