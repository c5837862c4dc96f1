// `retort bench-nvs`: FVGen's comparison, measured on held-out render-scenes clips where every
// novel view has an exact ground truth. One row per method — the point-cloud render with its holes
// filled (the non-generative baseline), the teacher at chosen DDIM step counts, every student —
// scored over frames 1..K-1 (frame 0 is the input view): PSNR, PSNR over the pixels the point
// cloud covers and over its holes, SSIM, a feature distance and FID in retort's own evaluator's
// features (equal n for every row), warp-based view consistency under the true geometry, and
// seconds per trajectory, and the PSNR at held-out cameras of a voxel field fitted to the input view
// plus the row's frames (reconstruction.h). Rows with an `ablation` label also form FVGen's ablation
// table.
#pragma once
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "retort/core/config.h"
#include "retort/core/options.h"
#include "retort/core/runtime.h"
#include "retort/nvs/reconstruction.h"

namespace retort {

struct NvsBenchModel {
  std::string name;
  std::filesystem::path file;   // nvs-teacher.safetensors or a student of it
  int64_t steps = 50;           // a teacher's DDIM steps (a student samples with its own)
  double cfg = 1.0;             // a teacher's guidance scale
  std::string ablation;         // the row's label in the ablation table; empty: not in it
};

struct NvsBenchConfig {
  std::string scenes = "runs/scenes/test.safetensors";
  std::filesystem::path evaluator = "weights/world-evaluator.safetensors";
  int64_t clips = 64;       // the first N clips of `scenes`
  int64_t batch = 16;       // clips per network call
  uint64_t seed = 0;
  bool point_cloud = true;  // the point cloud + hole filling row
  std::vector<NvsBenchModel> models;
  ReconstructionOptions reconstruction;  // [reconstruction]
  RuntimeOptions runtime;
};

const OptionTable<NvsBenchConfig>& nvs_bench_option_table();
const OptionTable<NvsBenchModel>& nvs_bench_model_option_table();
// Top-level keys, [[model]] tables, [reconstruction], [runtime]; unknown keys are refused, model
// files must exist.
NvsBenchConfig read_nvs_bench_config(ConfigNode root);

// Holes (mask 0) of images [N,3,H,W] filled from their surroundings, ring by ring: each hole pixel
// next to known pixels takes their mean (3x3), then counts as known. Known pixels are unchanged;
// an image with no known pixel stays as it is.
torch::Tensor fill_holes(const torch::Tensor& images, const torch::Tensor& mask);

// Scores every row into `out`: results.json, results.md (the tables), strip.png (the first clips:
// renders, each row, the ground truth). A finished row is kept (rows/NAME.json) and not redone
// when the config and the model file are unchanged. Returns the results.
nlohmann::json run_nvs_bench(const NvsBenchConfig& cfg, const std::filesystem::path& out, bool progress,
                             const std::string& config_text);
std::string nvs_bench_markdown(const nlohmann::json& results);

}  // namespace retort
