// Point clouds of input views and their z-buffered renders into other cameras: ViewCrafter's
// conditioning (it renders a DUSt3R cloud with PyTorch3D points; holes are left unpainted).
//
// Conventions: depth is z-depth, the distance along the camera's optical axis (-z_cam), so a pixel
// (i, j) with depth z unprojects to position + z (x right + y up - back), x = (j + 0.5 - R/2) / f,
// y = -(i + 0.5 - R/2) / f, f = (R/2) / tan(fovy/2) (camera.h's pixel convention). Images are in
// [0, 1]. Holes (pixels no point lands on) are black, 0, with mask 0.
#pragma once
#include <cstdint>
#include <filesystem>
#include <random>
#include <vector>

#include <torch/torch.h>

#include "retort/render/camera.h"

namespace retort {

struct PointCloud {
  torch::Tensor points;   // float32 [N,3], world
  torch::Tensor colours;  // float32 [N,3] in [0,1]
  // float32 [N]: the world size of the pixel the point came from (z / f): its splat footprint.
  torch::Tensor spacing;
  int64_t size() const { return points.defined() ? points.size(0) : 0; }
};

// One point per pixel whose depth is finite and positive (background: +inf, skipped). image float
// [3,R,R] in [0,1]; depth float [R,R] z-depth. Throws Error on mismatched shapes.
PointCloud unproject(const torch::Tensor& image, const torch::Tensor& depth, const Camera& cam);
PointCloud concat(const std::vector<PointCloud>& clouds);

struct SplatOptions {
  // Each point covers the pixels whose centres lie in a square of side footprint x (its source
  // pixel's size seen from the target camera) around its projection, and always the pixel it lands
  // in; 0: only that pixel. 1 covers exactly the source pixel's projected area (a view warped into
  // its own camera returns itself); a little more closes the cracks of surfaces seen more frontally
  // than in the input.
  double footprint = 1.5;
  int64_t max_radius = 2;  // the footprint is cut at (2 max_radius + 1)^2 pixels around the landing one
};

struct PointRenders {
  torch::Tensor images;  // float32 [K,3,R,R] in [0,1]; holes black
  torch::Tensor masks;   // float32 [K,R,R]: 1 where a point landed, else 0
  torch::Tensor depth;   // float32 [K,R,R]: z-depth of the nearest point, +inf in holes
};

// Z-buffer splat of the cloud into each camera at resolution R (nearest depth wins; ties go to the
// lower point index), vectorised over points x footprint x cameras. Points behind a camera or
// closer than 1e-6 are skipped. Deterministic and independent of the thread count.
PointRenders render_points(const PointCloud& cloud, const std::vector<Camera>& cams, int64_t res,
                           const SplatOptions& opts = {});

// ViewCrafter's conditioning of a trajectory: the input views (images [3,R,R] in [0,1], z-depths
// [R,R], cameras) unprojected into one cloud and rendered into every trajectory camera, with frame 0
// replaced by the first input view itself (mask 1). The data set and `retort nvs` both build it here.
PointRenders condition_renders(const std::vector<torch::Tensor>& images, const std::vector<torch::Tensor>& depths,
                               const std::vector<Camera>& input_cams, const std::vector<Camera>& trajectory,
                               int64_t res, const SplatOptions& opts = {});

// A DUSt3R-like depth estimate from the exact one: z * s * (1 + noise * e), e a standard normal
// clipped to ±3 per pixel, s uniform in [1 - scale_error, 1 + scale_error] per call (pass every view
// of a sample in one call so they share s). +inf stays +inf. noise in [0, 0.3], scale_error in [0, 0.5]
// (Error otherwise). Draws from `rng` with our own Box-Muller, so a seed gives the same noise everywhere.
std::vector<torch::Tensor> perturb_depths(const std::vector<torch::Tensor>& depths, double noise, double scale_error,
                                          std::mt19937_64& rng);

// ASCII PLY: x y z (float) and red green blue (uchar). Atomic write; IoError naming the file.
void write_ply(const std::filesystem::path& path, const PointCloud& cloud);

}  // namespace retort
