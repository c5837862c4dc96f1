// A rendered data set of the procedural world: random shapes, colours, cameras and lights, stored as
// one safetensors file, and the `retort render-world` command that makes it.
//
// File layout: images uint8 [N,3,R,R]; shape, colour, view int64 [N]; camera float32 [N,12]
// (camera_vector); azimuth, elevation, distance, fovy float32 [N] (degrees / world units). Metadata:
// format, resolution, n, seed, supersample, and the vocabulary (shapes, colours, views) so a file
// made with another vocabulary is refused instead of silently relabelled.
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>

#include <torch/torch.h>

#include "retort/core/config.h"
#include "retort/core/options.h"
#include "retort/data/idx.h"
#include "retort/render/camera.h"
#include "retort/render/world.h"

namespace retort {

struct WorldDatasetOptions {
  int64_t n = 20000;
  int64_t resolution = 32;  // 8..128
  uint64_t seed = 0;
  // Up to 80° elevation, so "overhead" (el > 60) views exist in the data.
  CameraRanges cameras = [] {
    CameraRanges r;
    r.elevation[0] = -10, r.elevation[1] = 80;
    return r;
  }();
  bool supersample = true;
  Vec3 background{1, 1, 1};
  // A smaller world for quick experiments and tests: only these shapes / colours (empty = all).
  // Class ids stay those of the full vocabulary.
  std::vector<Shape> shapes;
  std::vector<Colour> colours;
};

// Reads a [world] table: n, resolution, seed, supersample, background = [r,g,b], shapes and colours
// (lists of names; default all), and the camera
// ranges azimuth, elevation, distance, fovy as [low, high] pairs. Unknown keys (on finish()) and
// bad values are ConfigErrors naming the key and value.
WorldDatasetOptions read_world_options(ConfigNode n);
const OptionTable<WorldDatasetOptions>& world_option_table();

// Renders opts.n images (in parallel over LibTorch's intra-op threads; the result does not depend on
// the thread count) and writes them to `path` atomically (path.tmp, then rename).
void render_world_dataset(const WorldDatasetOptions& opts, const std::filesystem::path& path, bool progress = true);

struct WorldDataset {
  ImageDataset data;    // images float [N,3,R,R] in [-1,1]; labels prompt or object classes
  torch::Tensor cameras;  // float32 [N,12]
  torch::Tensor azimuth, elevation, distance, fovy;  // float32 [N]
  torch::Tensor shape, colour, view;                 // int64 [N]
  int64_t resolution = 0;
};

// labels: "prompt" (num_classes 192, prompt_class) or "object" (48, object_class); anything else is an
// Error. A missing, corrupt or inconsistent file is an IoError naming the file.
WorldDataset load_world_dataset(const std::filesystem::path& path, const std::string& labels = "prompt");

// One row per shape, the first `columns` images of that shape in file order (black where a shape
// has fewer). Throws IoError when the PNG cannot be written.
void write_world_preview(const std::filesystem::path& png, const WorldDataset& d, int64_t columns = 8);

// `retort render-world --config FILE --out DIR`: reads [world] (other tables are refused), writes
// DIR/world.safetensors, DIR/preview.png and DIR/config.resolved.toml; returns a one-line summary.
std::string run_render_world(const std::filesystem::path& config, const std::filesystem::path& out_dir,
                             bool progress = true, const std::vector<std::string>& overrides = {});

}  // namespace retort
