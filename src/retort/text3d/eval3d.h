// `retort eval3d`: SDS, VSD and ASD on equal terms (seed 002, Table 1). For each prompt and method
// it runs generate3d (resumable, one folder per run) and scores N random renders of the result:
//  * the world classifier's probability of the prompt's shape, colour and both (the stand-in for
//    Table 1's CLIP score);
//  * FID of the renders against true renders of the prompt's object from the same cameras, in the
//    classifier's feature space;
//  * multi-view consistency (view_consistency.h) on a ring of views.
// The true object itself is scored too, as the ceiling of each column.
#pragma once
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "retort/text3d/generate3d.h"
#include "retort/text3d/shape_scores.h"

namespace retort {

struct Eval3dConfig {
  Generate3dConfig base;              // every run's settings ([generate3d], [field], [output], teacher)
  std::map<std::string, Generate3dConfig> runs;  // per method: the file read with that method's presets
  std::map<std::string, std::string> run_configs;  // per method: its resolved config (run identity)
  std::filesystem::path evaluator = "weights/world-evaluator.safetensors";  // classifier over the 48 classes
  std::vector<std::string> prompts = {"a red torus", "a blue cube", "a green cone", "a yellow capsule"};
  std::filesystem::path prompts_file;  // one prompt per line ('#' comments); replaces `prompts` when set
  std::vector<std::string> methods = {"sds", "vsd", "asd"};
  int64_t views = 32;                 // random renders per result
  int64_t ring = 12;                  // views of the consistency ring
  uint64_t seed = 0;
  int64_t seeds = 1;                  // runs per method x prompt: generate3d seeds seed, seed + 1, ...
  ShapeScoreOptions shape;            // grid, chamfer_resolution (threshold: [output] mesh_threshold)
};

// The top-level `evaluator`, `prompts`, `prompts_file`, `methods`, and the [eval3d] keys.
const OptionTable<Eval3dConfig>& eval3d_option_table();
const OptionTable<Eval3dConfig>& eval3d_table_option_table();
// Reads `evaluator`, `prompts` (or `prompts_file`), `methods` and [eval3d] plus everything generate3d
// reads. A prompts file that is missing, empty or has a bad line is a ConfigError naming file:line.
Eval3dConfig read_eval3d_config(ConfigNode& root);

// Writes out/results.md, out/results.json and out/overview.png (rows: true object, then each
// method; a few views per prompt); returns the markdown table.
std::string run_eval3d(const Eval3dConfig& cfg, const std::filesystem::path& out, bool progress,
                       const std::string& config_text);

}  // namespace retort
