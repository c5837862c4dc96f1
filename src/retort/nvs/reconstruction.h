// Downstream reconstruction, why anyone wants novel views: a voxel radiance field fitted by
// photometric MSE to a scene's views, scored by PSNR at held-out cameras (midway between
// consecutive trajectory frames) against the scene's exact renders there. bench-nvs fits one per
// scene to the input view alone, to the input plus each row's generated frames, and to the input
// plus the ground-truth frames (the oracle).
#pragma once
#include <vector>

#include <torch/torch.h>

#include "retort/core/options.h"
#include "retort/core/rng.h"
#include "retort/render/camera.h"

namespace retort {

struct ReconstructionOptions {
  int64_t scenes = 8;       // the first N bench clips are reconstructed; 0 = off
  int64_t steps = 300;      // Adam updates per field
  int64_t rays = 1024;      // random pixels of the training views per update
  double lr = 0.1;
  int64_t voxels = 48;      // grid vertices per axis
  double bound = 1.6;       // the box [-bound, bound]^3 (the ground disc has radius 1.5)
  int64_t samples = 48;     // per ray
};

const OptionTable<ReconstructionOptions>& reconstruction_option_table();

// Held-out cameras of a trajectory: the midpoint of each pair of consecutive frames (K-1 cameras).
std::vector<Camera> held_out_cameras(const std::vector<Camera>& trajectory);

// Fits a voxel field (white background, no density bias) to `images` [V,3,R,R] in [0,1] seen from
// `cameras`, then returns the mean PSNR of its renders at `test_cameras` against `test_images`.
double reconstruction_psnr(const torch::Tensor& images, const std::vector<Camera>& cameras,
                           const torch::Tensor& test_images, const std::vector<Camera>& test_cameras,
                           const ReconstructionOptions& opts, Rng& rng);

}  // namespace retort
