#include "retort/field/voxel_grid.h"

#include <string>

#include "retort/core/error.h"

namespace retort {
namespace F = torch::nn::functional;

VoxelGridImpl::VoxelGridImpl(const VoxelGridOptions& opts) : RadianceField(opts.bound), opts_(opts) {
  if (opts.resolution < 2) throw ConfigError("voxel grid resolution must be >= 2, got " + std::to_string(opts.resolution));
  const int64_t R = opts.resolution;
  density = register_parameter("density", torch::zeros({1, 1, R, R, R}));
  color = register_parameter("color", torch::zeros({1, 3, R, R, R}));
}

double VoxelGridImpl::vertex_coord(int64_t i) const {
  return (2.0 * static_cast<double>(i) / static_cast<double>(opts_.resolution - 1) - 1.0) * bound();
}

torch::Tensor VoxelGridImpl::interpolate(const torch::Tensor& grid, const torch::Tensor& points) const {
  // grid_sample's last grid axis is (x, y, z) = (W, H, D); align_corners puts -1 and +1 on the
  // first and last vertex, matching vertex_coord.
  auto g = (points / bound()).clamp(-1, 1).to(grid.dtype()).view({1, 1, 1, -1, 3});
  auto out = F::grid_sample(grid, g, F::GridSampleFuncOptions().mode(torch::kBilinear).padding_mode(torch::kBorder).align_corners(true));
  return out.view({grid.size(1), -1}).t();  // [1,C,1,1,N] -> [N,C]
}

FieldSample VoxelGridImpl::query(const torch::Tensor& points) {
  auto raw = interpolate(density, points).squeeze(1);
  auto bias = blob_density_bias(points.to(raw.dtype()), opts_.blob_density, opts_.blob_radius);
  return {F::softplus(raw + bias), torch::sigmoid(interpolate(color, points))};
}

}  // namespace retort
