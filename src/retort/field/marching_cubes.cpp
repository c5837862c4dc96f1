#include "retort/field/marching_cubes.h"

#include <algorithm>
#include <cstdio>
#include <stdexcept>
#include <unordered_map>
#include <vector>

#include "retort/core/error.h"

namespace retort {
namespace {

// Corner c of a cube is at offset (c & 1, c >> 1 & 1, c >> 2 & 1). Edge e = 4 * axis + m runs
// along `axis` from corner kEdgeStart[e].
struct Tables {
  std::array<int, 12> edge_start{};
  std::array<int, 12> edge_axis{};
  std::array<std::vector<std::array<int, 3>>, 256> triangles;  // local edge triples per case
};

// The triangle table, derived instead of typed in (Bourke's 256 x 16 literal is easy to corrupt
// silently). Each cube face is resolved on its own: every cyclic run of inside corners is cut off
// by one segment between the run's two boundary edges, so an ambiguous face (diagonal corners
// inside) separates the inside corners, the classic table's choice. Both cubes sharing a face see
// the same segments, which is what makes the mesh closed. The segments chain into loops on the
// cube's surface, each triangulated as a fan, and are directed so the triangles' normals point
// from inside to outside.
// Bit mask of the cube faces (2 * axis + side) that local edge e lies on.
int edge_faces(int start, int axis) {
  int mask = 0;
  for (int a = 0; a < 3; ++a)
    if (a != axis) mask |= 1 << (2 * a + (start >> a & 1));
  return mask;
}

// Triangulates loop[i..j] (loop[i]-loop[j] is a segment or an already-used chord) without a chord
// between two edges on a common cube face: the neighbouring cube could draw the same chord, which
// would put one mesh edge in four triangles. A chord between edges on no common face exists only
// in this cube. Returns false when no such triangulation exists.
bool triangulate_range(const std::vector<int>& loop, const std::vector<int>& faces, int i, int j,
                       std::vector<std::array<int, 3>>& out) {
  if (j - i < 2) return true;
  auto chord_ok = [&](int a, int b) { return b - a == 1 || (faces[a] & faces[b]) == 0; };
  for (int k = i + 1; k < j; ++k) {
    if (!chord_ok(i, k) || !chord_ok(k, j)) continue;
    std::vector<std::array<int, 3>> tris{{loop[i], loop[k], loop[j]}};
    if (triangulate_range(loop, faces, i, k, tris) && triangulate_range(loop, faces, k, j, tris)) {
      out.insert(out.end(), tris.begin(), tris.end());
      return true;
    }
  }
  return false;
}

Tables build_tables() {
  Tables t;
  int edge_of[8][3];  // edge starting at corner c along axis a, or -1
  for (auto& row : edge_of) row[0] = row[1] = row[2] = -1;
  for (int a = 0; a < 3; ++a) {
    const int u = a == 0 ? 1 : 0, v = a == 2 ? 1 : 2;
    for (int m = 0; m < 4; ++m) {
      const int c0 = ((m & 1) << u) | ((m >> 1 & 1) << v);
      t.edge_start[4 * a + m] = c0;
      t.edge_axis[4 * a + m] = a;
      edge_of[c0][a] = 4 * a + m;
    }
  }
  auto edge_between = [&](int p, int q) {
    const int lo = p & q, diff = p ^ q;
    return edge_of[lo][diff == 1 ? 0 : diff == 2 ? 1 : 2];
  };
  auto corner_pos = [](int c, int axis) { return double(c >> axis & 1); };
  auto edge_mid = [&](int e, int axis) {
    return corner_pos(t.edge_start[e], axis) + (t.edge_axis[e] == axis ? 0.5 : 0.0);
  };
  auto triangulate = [&](const std::vector<int>& loop, int i, int j, std::vector<std::array<int, 3>>& out) {
    std::vector<int> faces;
    for (int e : loop) faces.push_back(edge_faces(t.edge_start[e], t.edge_axis[e]));
    return triangulate_range(loop, faces, i, j, out);
  };
  for (int cs = 0; cs < 256; ++cs) {
    std::array<int, 12> next;
    next.fill(-1);
    for (int a = 0; a < 3; ++a) {
      const int u = a == 0 ? 1 : 0, v = a == 2 ? 1 : 2;
      for (int side = 0; side < 2; ++side) {
        std::array<int, 4> q;
        const int cyc[4][2] = {{0, 0}, {1, 0}, {1, 1}, {0, 1}};
        for (int k = 0; k < 4; ++k) q[k] = (side << a) | (cyc[k][0] << u) | (cyc[k][1] << v);
        auto in = [&](int k) { return (cs >> q[(k + 4) % 4] & 1) != 0; };
        for (int k = 0; k < 4; ++k) {
          if (!in(k) || in(k - 1)) continue;  // k starts a run of inside corners
          int m = k;
          while (in(m + 1) && (m + 1) % 4 != k) ++m;
          if ((m + 1) % 4 == k) break;  // the whole face is inside: no crossing
          int from = edge_between(q[m % 4], q[(m + 1) % 4]), to = edge_between(q[(k + 3) % 4], q[k]);
          // Direct the segment so the run's inside corner lies to its right seen from outside
          // the cube: that winds the loop counter-clockwise around the outward surface normal.
          double d[3], w[3], n[3] = {0, 0, 0};
          for (int i = 0; i < 3; ++i) {
            d[i] = edge_mid(to, i) - edge_mid(from, i);
            w[i] = corner_pos(q[k], i) - edge_mid(from, i);
          }
          n[a] = side ? 1 : -1;
          const double s = (d[1] * w[2] - d[2] * w[1]) * n[0] + (d[2] * w[0] - d[0] * w[2]) * n[1] +
                           (d[0] * w[1] - d[1] * w[0]) * n[2];
          if (s > 0) std::swap(from, to);
          if (next[from] != -1) throw std::logic_error("marching cubes table: edge starts two segments");
          next[from] = to;
        }
      }
    }
    std::array<bool, 12> seen{};
    for (int e0 = 0; e0 < 12; ++e0) {
      if (next[e0] == -1 || seen[e0]) continue;
      std::vector<int> loop;
      for (int e = e0; !seen[e]; e = next[e]) {
        if (next[e] == -1) throw std::logic_error("marching cubes table: open loop");
        seen[e] = true;
        loop.push_back(e);
      }
      if (!triangulate(loop, 0, int(loop.size()) - 1, t.triangles[cs]))
        throw std::logic_error("marching cubes table: loop without a manifold triangulation");
    }
  }
  return t;
}

const Tables& tables() {
  static const Tables t = build_tables();
  return t;
}

std::string fmt_double(double x) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%g", x);
  return buf;
}

}  // namespace

Mesh marching_cubes(const torch::Tensor& volume, double threshold, const std::array<double, 3>& origin,
                    double spacing) {
  if (volume.dim() != 3 || volume.size(0) < 2 || volume.size(1) < 2 || volume.size(2) < 2)
    throw ConfigError("marching_cubes: volume must be [X,Y,Z] with every size >= 2");
  const auto& tab = tables();
  auto vol = volume.detach().to(torch::kCPU, torch::kFloat64).contiguous();
  const double* val = vol.data_ptr<double>();
  const int64_t nx = vol.size(0), ny = vol.size(1), nz = vol.size(2);
  auto at = [&](int64_t i, int64_t j, int64_t k) { return val[(i * ny + j) * nz + k]; };
  std::unordered_map<int64_t, int64_t> vertex_of_edge;  // grid edge key -> vertex index (welding)
  std::vector<float> verts;
  std::vector<int64_t> faces;
  auto vertex = [&](int64_t i, int64_t j, int64_t k, int axis) {
    const int64_t key = ((i * ny + j) * nz + k) * 3 + axis;
    auto [it, fresh] = vertex_of_edge.try_emplace(key, int64_t(verts.size() / 3));
    if (fresh) {
      const int64_t i1 = i + (axis == 0), j1 = j + (axis == 1), k1 = k + (axis == 2);
      const double v0 = at(i, j, k), v1 = at(i1, j1, k1);
      const double f = (threshold - v0) / (v1 - v0);  // v0, v1 straddle the threshold: v1 != v0
      const double p[3] = {double(i), double(j), double(k)};
      for (int a = 0; a < 3; ++a) verts.push_back(float(origin[a] + spacing * (p[a] + (a == axis ? f : 0.0))));
    }
    return it->second;
  };
  for (int64_t i = 0; i + 1 < nx; ++i)
    for (int64_t j = 0; j + 1 < ny; ++j)
      for (int64_t k = 0; k + 1 < nz; ++k) {
        int cs = 0;
        for (int c = 0; c < 8; ++c)
          if (at(i + (c & 1), j + (c >> 1 & 1), k + (c >> 2 & 1)) > threshold) cs |= 1 << c;
        for (const auto& tri : tab.triangles[cs])
          for (int e : tri) {
            const int c0 = tab.edge_start[e];
            faces.push_back(vertex(i + (c0 & 1), j + (c0 >> 1 & 1), k + (c0 >> 2 & 1), tab.edge_axis[e]));
          }
      }
  if (faces.empty())
    throw Error("no surface at threshold " + fmt_double(threshold) + ": max density " +
                fmt_double(vol.max().item<double>()) + ", min " + fmt_double(vol.min().item<double>()));
  Mesh mesh;
  mesh.vertices = torch::tensor(verts, torch::kFloat32).view({-1, 3});
  mesh.faces = torch::tensor(faces, torch::kLong).view({-1, 3});
  return mesh;
}

Mesh extract_mesh(RadianceField& field, const MeshExtractOptions& opts) {
  if (opts.resolution < 2 || opts.chunk < 1)
    throw ConfigError("extract_mesh: resolution must be >= 2 and chunk >= 1");
  torch::NoGradGuard no_grad;
  const int64_t R = opts.resolution;
  const double b = field.bound(), h = 2 * b / double(R - 1);
  auto device = torch::kCPU;
  for (const auto& p : field.parameters()) {
    device = p.device().type();
    break;
  }
  auto query = [&](const torch::Tensor& pts, bool rgb) {
    std::vector<torch::Tensor> out;
    for (int64_t s = 0; s < pts.size(0); s += opts.chunk) {
      auto sample = field.query(pts.slice(0, s, std::min(pts.size(0), s + opts.chunk)).to(device));
      out.push_back((rgb ? sample.rgb : sample.density).to(torch::kCPU, torch::kFloat32));
    }
    return torch::cat(out, 0);
  };
  auto axis = torch::linspace(-b, b, R, torch::kFloat32);
  auto grid = torch::stack(torch::meshgrid({axis, axis, axis}, "ij"), -1).reshape({-1, 3});
  auto density = query(grid, false).view({R, R, R});
  const double pad = std::min(0.0, opts.threshold) - 1;  // below any threshold: closes the surface
  auto volume = torch::full({R + 2, R + 2, R + 2}, pad, torch::kFloat32);
  volume.slice(0, 1, R + 1).slice(1, 1, R + 1).slice(2, 1, R + 1).copy_(density);
  Mesh mesh;
  try {
    mesh = marching_cubes(volume, opts.threshold, {-b - h, -b - h, -b - h}, h);
  } catch (const Error&) {
    throw Error("no surface at threshold " + fmt_double(opts.threshold) + ": max density " +
                fmt_double(density.max().item<double>()));
  }
  mesh.colors = query(mesh.vertices.clamp(-b, b), true);
  return mesh;
}

}  // namespace retort
