#include "retort/eval/view_consistency.h"

#include <limits>

#include <fmt/format.h>

#include "retort/core/error.h"

namespace retort {
namespace F = torch::nn::functional;

namespace {

// Bilinear samples of maps [C,R,R] at continuous pixel coords [N,2] (column, row) -> [N,C].
torch::Tensor sample_at(const torch::Tensor& maps, const torch::Tensor& pix, int64_t res) {
  auto grid = (pix / double(res)) * 2 - 1;  // align_corners = false: pixel centres at (j + 0.5) / R
  auto out = F::grid_sample(maps.unsqueeze(0), grid.view({1, 1, -1, 2}),
                            F::GridSampleFuncOptions().mode(torch::kBilinear).padding_mode(torch::kBorder)
                                .align_corners(false));
  return out.view({maps.size(0), -1}).t();
}

}  // namespace

Consistency view_consistency(const ViewSet& v, double tol) {
  const int64_t K = int64_t(v.cameras.size());
  if (K < 2 || v.images.size(0) != K || v.depth.size(0) != K || v.mask.size(0) != K)
    throw Error(fmt::format("view_consistency: need >= 2 views with images, depth and mask for each, got {}", K));
  const int64_t R = v.images.size(-1);
  double l1_sum = 0, matched = 0, total = 0;
  for (int64_t a = 0; a < K; ++a) {
    int64_t b = (a + 1) % K;
    auto rays = camera_rays(v.cameras[a], R);
    auto m = v.mask[a].reshape({-1});
    auto idx = m.nonzero().squeeze(1);
    total += double(idx.numel());
    if (idx.numel() == 0) continue;
    auto d = v.depth[a].reshape({-1}).index_select(0, idx).unsqueeze(1);
    auto points = rays.origins.index_select(0, idx) + d * rays.dirs.index_select(0, idx);
    auto proj = project(v.cameras[b], points, R);
    auto pix = proj.pixels;
    auto inside = (proj.depth > 0) & (pix.select(1, 0) >= 0) & (pix.select(1, 0) < R) & (pix.select(1, 1) >= 0) &
                  (pix.select(1, 1) < R);
    // b's own surface at the warped pixel (nearest pixel: depth must not be blended across edges).
    auto pj = pix.select(1, 0).floor().clamp(0, R - 1).to(torch::kLong);
    auto pi = pix.select(1, 1).floor().clamp(0, R - 1).to(torch::kLong);
    auto flat = pi * R + pj;
    auto b_mask = v.mask[b].reshape({-1}).index_select(0, flat);
    auto b_depth = v.depth[b].reshape({-1}).index_select(0, flat);
    auto cam_b = v.cameras[b].c2w.index({torch::indexing::Slice(0, 3), 3});
    auto dist_b = (points - cam_b).norm(2, 1);
    auto ok = inside & b_mask & ((b_depth - dist_b).abs() < tol);
    auto okidx = ok.nonzero().squeeze(1);
    matched += double(okidx.numel());
    if (okidx.numel() == 0) continue;
    auto col_a = v.images[a].reshape({3, -1}).t().index_select(0, idx).index_select(0, okidx);
    auto col_b = sample_at(v.images[b], pix.index_select(0, okidx), R);
    l1_sum += (col_a - col_b).abs().mean(1).sum().item<double>();
  }
  Consistency c;
  c.matched = total > 0 ? matched / total : 0.0;
  c.l1 = matched > 0 ? l1_sum / matched : std::numeric_limits<double>::quiet_NaN();
  return c;
}

}  // namespace retort
