// `retort bench-2d`: SDS, VSD and ASD (Eq. 6, and Eq. 5 with real data) as 2-D particle
// optimisers on equal terms. Every [[run]] is a generate2d run (resumable, runs/NAME/) over the
// same prompts and particle count; its particles are scored by the shipped evaluator against as
// many test images of the prompts' classes (equal n): FID, precision, recall (features of the
// evaluator), class accuracy, and the share of pixels at the ends of the range (saturation). Real
// training images and the teacher's own samples, with the same labels, are the reference rows.
// Finished rows are kept (runs/NAME/result.json), so a killed bench resumes; results.md,
// results.json and overview.png appear only when every row is done.
#pragma once
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "retort/text2d/generate2d.h"

namespace retort {

struct Bench2dConfig {
  std::filesystem::path evaluator = "weights/fmnist-evaluator.safetensors";
  Generate2dConfig base;                // teacher, prompts, [generate2d] defaults, [data], [runtime]
  std::vector<Generate2dConfig> runs;   // [[run]] tables on top of [generate2d]
  std::vector<std::string> names;
  int64_t k = 3;                // neighbours of precision / recall
  int64_t teacher_steps = 50;   // DDIM steps of the teacher row; 0: no teacher row
  double teacher_cfg = 1.0;     // its guidance scale
  int64_t show = 8;             // particles per prompt in overview.png
  uint64_t seed = 0;            // the teacher row's noise
};

// The top-level `evaluator` and the [eval] keys.
const OptionTable<Bench2dConfig>& bench2d_option_table();
const OptionTable<Bench2dConfig>& bench2d_eval_option_table();
Bench2dConfig read_bench2d_config(ConfigNode root);
// Writes out/results.md, results.json, overview.png (rows: real, teacher, each run); returns the results.
nlohmann::json run_bench2d(const Bench2dConfig& cfg, const std::filesystem::path& out, bool progress,
                           const std::string& config_text);
std::string bench2d_markdown(const nlohmann::json& results);

}  // namespace retort
