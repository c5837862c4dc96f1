// `retort bench-distill`: the teacher at several DDIM step counts and every configured student,
// scored in one run on one machine: FID / precision / recall from the evaluator's features
// against the test split, class accuracy, milliseconds per sample and speed-up over the
// slowest teacher row. Students given as files ([eval] students, e.g. the shipped
// weights/fmnist-dmd2-4step.safetensors) are scored beside them without training; the [[run]]
// rows are trained here, and their names say how many updates. Finished runs of the same config are kept (runs/NAME/result.json), so a
// killed benchmark resumes; results.md / results.json appear only when every row is done.
#pragma once
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "retort/image/image_distill.h"

namespace retort {

struct DistillBenchConfig {
  std::filesystem::path evaluator = "weights/fmnist-evaluator.safetensors";  // from train-evaluator
  ImageDistillConfig base;               // teacher, data, runtime, [distill] defaults
  std::vector<ImageDistillConfig> runs;  // [[run]] tables on top of base
  std::vector<std::string> names;
  std::vector<std::string> students;  // [eval] students: student files scored as they are
  std::vector<int64_t> teacher_steps = {50, 10};
  int64_t n = 2000;  // generated images per row (balanced over classes)
  int64_t k = 3;     // neighbours of precision / recall
  uint64_t seed = 0;
};

// The top-level `evaluator` and the [eval] keys.
const OptionTable<DistillBenchConfig>& distill_bench_option_table();
const OptionTable<DistillBenchConfig>& distill_bench_eval_option_table();
DistillBenchConfig read_distill_bench_config(ConfigNode root);
nlohmann::json run_distill_bench(const DistillBenchConfig& cfg, const std::filesystem::path& out, bool progress,
                                 const std::string& config_text);
std::string distill_results_markdown(const nlohmann::json& results);

}  // namespace retort
