#include "retort/field/mesh_io.h"

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <limits>
#include <string>

#include "retort/core/error.h"

namespace retort {
namespace {

struct MeshData {
  torch::Tensor v, f, c;  // float [V,3], int64 [F,3], uint8 [V,3] or undefined
};

MeshData prepare(const std::filesystem::path& path, const Mesh& mesh) {
  if (!mesh.vertices.defined() || mesh.vertices.dim() != 2 || mesh.vertices.size(1) != 3 || !mesh.faces.defined() ||
      mesh.faces.dim() != 2 || mesh.faces.size(1) != 3)
    throw IoError(path.string() + ": mesh needs vertices [V,3] and faces [F,3]");
  MeshData d;
  d.v = mesh.vertices.detach().to(torch::kCPU, torch::kFloat32).contiguous();
  d.f = mesh.faces.detach().to(torch::kCPU, torch::kLong).contiguous();
  if (mesh.colors.defined()) {
    if (!mesh.colors.sizes().equals(mesh.vertices.sizes()))
      throw IoError(path.string() + ": mesh colors must be [V,3] like the vertices");
    d.c = (mesh.colors.detach().to(torch::kCPU, torch::kFloat32).clamp(0, 1) * 255).round().to(torch::kUInt8).contiguous();
  }
  if (d.f.numel() > 0 && (d.f.min().item<int64_t>() < 0 || d.f.max().item<int64_t>() >= d.v.size(0)))
    throw IoError(path.string() + ": mesh face index out of range");
  return d;
}

std::ofstream open_out(const std::filesystem::path& path, std::ios::openmode mode) {
  std::ofstream out(path, mode);
  if (!out) throw IoError(path.string() + ": cannot open for writing");
  return out;
}

void finish(std::ofstream& out, const std::filesystem::path& path) {
  out.close();
  if (!out) throw IoError(path.string() + ": write failed");
}

}  // namespace

void write_obj(const std::filesystem::path& path, const Mesh& mesh) {
  auto d = prepare(path, mesh);
  auto out = open_out(path, std::ios::out | std::ios::trunc);
  const float* v = d.v.data_ptr<float>();
  const int64_t* f = d.f.data_ptr<int64_t>();
  char line[160];
  for (int64_t i = 0; i < d.v.size(0); ++i) {
    if (d.c.defined()) {
      const uint8_t* c = d.c.data_ptr<uint8_t>() + 3 * i;
      std::snprintf(line, sizeof line, "v %.6g %.6g %.6g %.4g %.4g %.4g\n", v[3 * i], v[3 * i + 1], v[3 * i + 2],
                    c[0] / 255.0, c[1] / 255.0, c[2] / 255.0);
    } else {
      std::snprintf(line, sizeof line, "v %.6g %.6g %.6g\n", v[3 * i], v[3 * i + 1], v[3 * i + 2]);
    }
    out << line;
  }
  for (int64_t i = 0; i < d.f.size(0); ++i) out << "f " << f[3 * i] + 1 << ' ' << f[3 * i + 1] + 1 << ' ' << f[3 * i + 2] + 1 << '\n';
  finish(out, path);
}

void write_ply(const std::filesystem::path& path, const Mesh& mesh) {
  static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "write_ply writes native little-endian data");
  auto d = prepare(path, mesh);
  if (d.v.size(0) > std::numeric_limits<int32_t>::max())
    throw IoError(path.string() + ": too many vertices for 32-bit PLY indices");
  auto out = open_out(path, std::ios::out | std::ios::trunc | std::ios::binary);
  out << "ply\nformat binary_little_endian 1.0\ncomment written by retort\n"
      << "element vertex " << d.v.size(0) << "\nproperty float x\nproperty float y\nproperty float z\n";
  if (d.c.defined()) out << "property uchar red\nproperty uchar green\nproperty uchar blue\n";
  out << "element face " << d.f.size(0) << "\nproperty list uchar int vertex_indices\nend_header\n";
  const float* v = d.v.data_ptr<float>();
  for (int64_t i = 0; i < d.v.size(0); ++i) {
    out.write(reinterpret_cast<const char*>(v + 3 * i), 3 * sizeof(float));
    if (d.c.defined()) out.write(reinterpret_cast<const char*>(d.c.data_ptr<uint8_t>() + 3 * i), 3);
  }
  auto f32 = d.f.to(torch::kInt32).contiguous();
  const int32_t* f = f32.data_ptr<int32_t>();
  for (int64_t i = 0; i < d.f.size(0); ++i) {
    const uint8_t n = 3;
    out.write(reinterpret_cast<const char*>(&n), 1);
    out.write(reinterpret_cast<const char*>(f + 3 * i), 3 * sizeof(int32_t));
  }
  finish(out, path);
}

}  // namespace retort
