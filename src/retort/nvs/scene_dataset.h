// The novel-view-synthesis data set of procedural scenes, and `retort render-scenes`.
//
// Each sample: a scene (scene.h), an input camera on a sphere around the scene centre, a trajectory
// of K frames starting at it (offset_trajectory with offsets drawn from the configured ranges), the
// ground-truth render of every frame, 1 or 2 input views (frame 0, and frame K-1 in 2-view mode)
// with their z-depth (optionally perturbed: perturb_depths), the point cloud of the input views
// rendered into every frame (render_points), and its coverage mask. Frame 0 of the renders is the
// input view itself (ViewCrafter's c_concat puts the reference image there), with mask 1.
//
// File layout (safetensors, one file per split): frames, renders uint8 [N,K,3,R,R]; masks uint8
// [N,K,1,R,R] (0/1); inputs uint8 [N,V,3,R,R]; input_depth float32 [N,V,R,R] (+inf background);
// c2w float32 [N,K,4,4]; fovy float32 [N,K] (degrees); offset float32 [N,3] (d_phi, d_theta, d_r);
// the scene: object_count int64 [N], object_shape, object_colour int64 [N,3] (-1 past the count),
// object_scale, object_rotation float32 [N,3], object_xy float32 [N,3,2], light float32 [N,3].
// Metadata: format, split, n, resolution, frames, views, seed, the vocabularies (shapes, colours,
// grounds) and `options`, the [scenes] options as JSON (how to re-render a scene).
#pragma once
#include <array>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "retort/core/config.h"
#include "retort/core/options.h"
#include "retort/nvs/point_cloud.h"
#include "retort/nvs/scene.h"
#include "retort/nvs/trajectory.h"

namespace retort {

struct SceneDatasetOptions {
  int64_t train = 4000, test = 256;  // samples per split
  int64_t resolution = 32;
  int64_t frames = 8;  // K
  int64_t views = 1;   // 1, or 2: the trajectory ends at the second input view
  int64_t objects_min = 1, objects_max = 3;
  std::array<double, 2> scale = {0.75, 1.0};
  double spread = 0.55;
  Ground ground = Ground::checker;
  double ground_radius = 1.5;
  // The input camera, uniform in each (look_at_origin).
  std::array<double, 2> azimuth = {0, 360}, elevation = {10, 45}, distance = {2.0, 2.6}, fovy = {40, 50};
  // Trajectory offsets, uniform in each; the elevation along the trajectory is clamped.
  std::array<double, 2> d_phi = {-45, 45}, d_theta = {-30, 30}, d_r = {-0.3, 0.3};
  std::array<double, 2> elevation_limits = {5, 80};
  double depth_noise = 0, depth_scale_error = 0;
  double footprint = 1.5;
  bool supersample = true;
  std::array<double, 3> background = {1, 1, 1};
  uint64_t seed = 0;
};

// The [scenes] keys, declared once: read, documented (`retort config render-scenes`), stored.
const OptionTable<SceneDatasetOptions>& scene_dataset_option_table();
// Reads [scenes]; unknown keys are left for finish(). ConfigErrors name the file, key and value.
SceneDatasetOptions read_scene_dataset_options(ConfigNode n);

// Renders `n` samples of the split ("train" or "test": independent random streams of one seed) in
// parallel over LibTorch's intra-op threads (the result does not depend on the thread count) and
// writes them to `path` atomically. Returns the seconds spent rendering.
double render_scene_dataset(const SceneDatasetOptions& o, const std::string& split, const std::filesystem::path& path,
                            bool progress = true);

struct SceneDataset {
  torch::Tensor frames;       // float32 [N,K,3,R,R] in [-1,1]: ground-truth renders along the trajectory
  torch::Tensor renders;      // float32 [N,K,3,R,R] in [-1,1]: point-cloud renders (frame 0 = the input view itself)
  torch::Tensor masks;        // float32 [N,K,1,R,R] in {0,1}: coverage of the point-cloud render
  torch::Tensor inputs;       // float32 [N,V,3,R,R] in [-1,1]: input views
  torch::Tensor input_depth;  // float32 [N,V,R,R]: z-depth given to the unprojection (noisy if configured), +inf background
  torch::Tensor c2w;          // float32 [N,K,4,4]; fovy float32 [N,K]
  torch::Tensor fovy;
  int64_t resolution = 0, frames_per_clip = 0, views = 0;
  // Beyond the teacher's interface: how the samples were made, to re-render them.
  torch::Tensor offset;              // float32 [N,3]
  std::vector<Scene> scenes;         // N
  SceneDatasetOptions options;
  std::string split;
};

// IoError naming the file on a missing, corrupt or inconsistent file.
SceneDataset load_scene_dataset(const std::filesystem::path& file);

// Frame `frame` of sample `index` as a Camera (from the stored c2w and fovy).
Camera scene_camera(const SceneDataset& d, int64_t index, int64_t frame);

struct SceneViews {
  torch::Tensor images;  // float32 [M,3,res,res] in [-1,1]
  torch::Tensor alpha;   // float32 [M,res,res]
  torch::Tensor depth;   // float32 [M,res,res]: z-depth, +inf background
};
// Sample `index`'s scene from any cameras, rendered as the data set was (supersampling, background,
// ground): the stored frames re-render bit for bit. Error for an index out of range.
SceneViews render_scene_views(const SceneDataset& d, int64_t index, const std::vector<Camera>& cams, int64_t res);
SceneViews render_scene_views(const std::filesystem::path& file, int64_t index, const std::vector<Camera>& cams,
                              int64_t res);

// For the first `samples` samples, two rows each: [input 1 | point-cloud renders of frames 0..K-1]
// above [input 2 (black with one view) | ground truth of frames 0..K-1]; tiles upscaled to about
// 96 px. IoError when the PNG cannot be written.
void write_scene_preview(const std::filesystem::path& png, const SceneDataset& d, int64_t samples = 4);

// `retort render-scenes --config FILE --out DIR`: reads [scenes] (other tables are refused), writes
// DIR/train.safetensors, DIR/test.safetensors, DIR/preview.png (test samples) and
// DIR/config.resolved.toml; nothing is written before the config is read. Returns a one-line summary.
std::string run_render_scenes(const std::filesystem::path& config, const std::filesystem::path& out_dir,
                              bool progress = true, const std::vector<std::string>& overrides = {});

}  // namespace retort
