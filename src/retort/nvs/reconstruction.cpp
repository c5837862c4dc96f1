#include "retort/nvs/reconstruction.h"

#include <fmt/format.h>

#include "retort/core/error.h"
#include "retort/eval/view_metrics.h"
#include "retort/field/volume_render.h"
#include "retort/field/voxel_grid.h"
#include "retort/nvs/trajectory.h"

namespace retort {

const OptionTable<ReconstructionOptions>& reconstruction_option_table() {
  static const auto t = [] {
    using O = ReconstructionOptions;
    OptionTable<O> o;
    o.integer("scenes", &O::scenes, 0, 1'000'000, "the first N clips are reconstructed (0 = no reconstruction)")
        .integer("steps", &O::steps, 1, 1'000'000, "Adam updates per voxel field")
        .integer("rays", &O::rays, 1, 10'000'000, "random training pixels per update")
        .number("lr", &O::lr, 1e-6, 100, "Adam learning rate of the grid values")
        .integer("voxels", &O::voxels, 2, 512, "grid vertices per axis")
        .number("bound", &O::bound, 0.1, 100, "half-width of the field's box")
        .integer("samples", &O::samples, 2, 4096, "volume-rendering samples per ray");
    return o;
  }();
  return t;
}

std::vector<Camera> held_out_cameras(const std::vector<Camera>& trajectory) {
  std::vector<Camera> cams;
  for (size_t k = 0; k + 1 < trajectory.size(); ++k) cams.push_back(interpolate_trajectory(trajectory[k], trajectory[k + 1], 3)[1]);
  return cams;
}

double reconstruction_psnr(const torch::Tensor& images, const std::vector<Camera>& cameras,
                           const torch::Tensor& test_images, const std::vector<Camera>& test_cameras,
                           const ReconstructionOptions& opts, Rng& rng) {
  const int64_t V = images.size(0), R = images.size(-1);
  if (V != int64_t(cameras.size()) || test_images.size(0) != int64_t(test_cameras.size()) || test_cameras.empty())
    throw Error(fmt::format("reconstruction: {} views for {} cameras, {} test views for {} cameras", V, cameras.size(),
                            test_images.size(0), test_cameras.size()));
  VoxelGridOptions vo;
  vo.resolution = opts.voxels;
  vo.bound = opts.bound;
  vo.blob_density = 0;
  VoxelGrid field(vo);
  std::vector<torch::Tensor> origins, dirs;
  for (const auto& c : cameras) {
    auto r = camera_rays(c, R);
    origins.push_back(r.origins);
    dirs.push_back(r.dirs);
  }
  auto all_o = torch::cat(origins), all_d = torch::cat(dirs);
  auto all_rgb = images.permute({0, 2, 3, 1}).reshape({-1, 3}).to(torch::kFloat32);  // row-major, like the rays
  torch::optim::Adam adam(field->parameters(), torch::optim::AdamOptions(opts.lr));
  VolumeRenderOptions ro;
  ro.samples = opts.samples;
  for (int64_t step = 0; step < opts.steps; ++step) {
    auto idx = rng.randint(0, all_o.size(0), {opts.rays}, torch::kCPU);
    auto out = render_rays(*field, all_o.index_select(0, idx), all_d.index_select(0, idx), ro);
    auto loss = (out.rgb - all_rgb.index_select(0, idx)).pow(2).mean();
    adam.zero_grad();
    loss.backward();
    adam.step();
  }
  torch::NoGradGuard ng;
  std::vector<torch::Tensor> renders;
  for (const auto& c : test_cameras) renders.push_back(render_image(*field, camera_rays(c, R), R, ro));
  return psnr(torch::stack(renders), test_images).mean().item<double>();
}

}  // namespace retort
