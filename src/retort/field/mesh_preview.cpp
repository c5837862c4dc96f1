#include "retort/field/mesh_preview.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace retort {
namespace {

struct V3 {
  double x, y, z;
};
V3 sub(V3 a, V3 b) { return {a.x - b.x, a.y - b.y, a.z - b.z}; }
V3 cross(V3 a, V3 b) { return {a.y * b.z - a.z * b.y, a.z * b.x - a.x * b.z, a.x * b.y - a.y * b.x}; }
double dot(V3 a, V3 b) { return a.x * b.x + a.y * b.y + a.z * b.z; }
V3 unit(V3 a) {
  const double n = std::sqrt(dot(a, a));
  return n > 0 ? V3{a.x / n, a.y / n, a.z / n} : V3{0, 0, 1};
}

}  // namespace

torch::Tensor render_mesh_preview(const Mesh& mesh, const MeshPreviewOptions& opts) {
  const int64_t S = opts.size, N = int64_t(opts.yaw_deg.size());
  auto image = torch::ones({N, 3, S, S}, torch::kFloat32);
  const auto verts = mesh.vertices.to(torch::kCPU, torch::kFloat64).contiguous();
  const auto faces = mesh.faces.to(torch::kCPU, torch::kInt64).contiguous();
  const bool coloured = mesh.colors.defined() && mesh.colors.numel() == mesh.vertices.numel();
  const auto cols = coloured ? mesh.colors.to(torch::kCPU, torch::kFloat64).contiguous() : torch::Tensor();
  const int64_t V = verts.size(0), F = faces.size(0);
  if (V == 0 || F == 0) return image;
  auto va = verts.accessor<double, 2>();
  auto fa = faces.accessor<int64_t, 2>();
  const double* cd = coloured ? cols.data_ptr<double>() : nullptr;
  // Centre of the bounding box and the radius of the farthest vertex: the same framing in every view.
  V3 lo{INFINITY, INFINITY, INFINITY}, hi{-INFINITY, -INFINITY, -INFINITY};
  for (int64_t i = 0; i < V; ++i) {
    lo = {std::min(lo.x, va[i][0]), std::min(lo.y, va[i][1]), std::min(lo.z, va[i][2])};
    hi = {std::max(hi.x, va[i][0]), std::max(hi.y, va[i][1]), std::max(hi.z, va[i][2])};
  }
  const V3 centre{(lo.x + hi.x) / 2, (lo.y + hi.y) / 2, (lo.z + hi.z) / 2};
  double radius = 1e-9;
  for (int64_t i = 0; i < V; ++i) {
    const V3 d = sub({va[i][0], va[i][1], va[i][2]}, centre);
    radius = std::max(radius, std::sqrt(dot(d, d)));
  }
  const double scale = 0.48 * S / radius, deg = std::acos(-1.0) / 180;
  const V3 light = unit({-0.4, 0.6, 1.0});  // in view space: the viewer looks along -z
  std::vector<double> depth(S * S);
  std::vector<V3> p(V);
  for (int64_t n = 0; n < N; ++n) {
    const double cy = std::cos(opts.yaw_deg[n] * deg), sy = std::sin(opts.yaw_deg[n] * deg);
    const double ce = std::cos(opts.elevation_deg * deg), se = std::sin(opts.elevation_deg * deg);
    for (int64_t i = 0; i < V; ++i) {
      const V3 q = sub({va[i][0], va[i][1], va[i][2]}, centre);
      const V3 r{cy * q.x - sy * q.z, q.y, sy * q.x + cy * q.z};   // yaw about y
      p[i] = {r.x, ce * r.y - se * r.z, se * r.y + ce * r.z};      // then tilt: look down
    }
    std::fill(depth.begin(), depth.end(), -std::numeric_limits<double>::infinity());
    auto img = image[n];
    auto ia = img.accessor<float, 3>();
    for (int64_t f = 0; f < F; ++f) {
      const int64_t a = fa[f][0], b = fa[f][1], c = fa[f][2];
      if (a < 0 || b < 0 || c < 0 || a >= V || b >= V || c >= V) continue;
      const V3 normal = unit(cross(sub(p[b], p[a]), sub(p[c], p[a])));
      // Front faces (counter-clockwise seen from outside) face the viewer: normal.z > 0.
      const double shade = normal.z >= 0 ? 0.3 + 0.7 * std::max(0.0, dot(normal, light)) : 0.15;
      auto column = [&](const V3& v) { return S / 2.0 + v.x * scale; };
      auto row = [&](const V3& v) { return S / 2.0 - v.y * scale; };
      const double x0 = column(p[a]), y0 = row(p[a]), x1 = column(p[b]), y1 = row(p[b]), x2 = column(p[c]), y2 = row(p[c]);
      const double area = (x1 - x0) * (y2 - y0) - (x2 - x0) * (y1 - y0);
      if (std::abs(area) < 1e-12) continue;
      const int64_t xa = std::max<int64_t>(0, int64_t(std::floor(std::min({x0, x1, x2}))));
      const int64_t xb = std::min<int64_t>(S - 1, int64_t(std::ceil(std::max({x0, x1, x2}))));
      const int64_t ya = std::max<int64_t>(0, int64_t(std::floor(std::min({y0, y1, y2}))));
      const int64_t yb = std::min<int64_t>(S - 1, int64_t(std::ceil(std::max({y0, y1, y2}))));
      for (int64_t y = ya; y <= yb; ++y)
        for (int64_t x = xa; x <= xb; ++x) {
          const double px = x + 0.5, py = y + 0.5;  // pixel centres
          const double w0 = ((x1 - px) * (y2 - py) - (x2 - px) * (y1 - py)) / area;
          const double w1 = ((x2 - px) * (y0 - py) - (x0 - px) * (y2 - py)) / area;
          const double w2 = 1 - w0 - w1;
          if (w0 < 0 || w1 < 0 || w2 < 0) continue;
          const double z = w0 * p[a].z + w1 * p[b].z + w2 * p[c].z;
          if (z <= depth[y * S + x]) continue;
          depth[y * S + x] = z;
          for (int ch = 0; ch < 3; ++ch) {
            const double base = cd ? w0 * cd[a * 3 + ch] + w1 * cd[b * 3 + ch] + w2 * cd[c * 3 + ch] : 0.75;
            ia[ch][y][x] = float(std::clamp(base * shade, 0.0, 1.0));
          }
        }
    }
  }
  return image;
}

}  // namespace retort
