// Training of the evaluator classifier (models/classifier.h) on a labelled image data set: AdamW with
// a linear warm-up and cosine decay, random shifts (and optionally flips), checkpoints and resume, then
// the test-split accuracy. `retort train-evaluator` runs it; `retort eval` uses the file it writes.
#pragma once
#include <filesystem>
#include <string>

#include "retort/core/config.h"
#include "retort/core/runtime.h"
#include "retort/core/runtime_config.h"
#include "retort/image/dataset_config.h"
#include "retort/models/classifier.h"

namespace retort {

struct EvaluatorConfig {
  DataConfig data;
  // width and feature_dim come from [evaluator]; channels, resolution and num_classes are set from
  // the training data by train_evaluator.
  ClassifierOptions model;
  int64_t steps = 3000, batch = 128;
  double lr = 2e-3, weight_decay = 0.01;
  int64_t warmup = 100;  // linear warm-up steps, then cosine decay to 0
  int64_t shift = 0;     // random translation by up to this many pixels (0 = off)
  bool flip = false;     // random horizontal flips; off: Fashion-MNIST items face one way, and a
                         // flip-invariant evaluator would not see a student that mirrors them
  uint64_t seed = 0;
  RuntimeOptions runtime;
  int64_t checkpoint_every = 500, log_every = 50;
  int64_t monitor = 1000;  // each log row: accuracy on the first N test images (0 = off)
  std::string resolved;    // the resolved TOML (defaults included), for config.resolved.toml
};

// The [evaluator] keys.
const OptionTable<EvaluatorConfig>& evaluator_option_table();
// Reads [data], [evaluator] and [runtime]; unknown keys are ConfigErrors (root.finish()).
EvaluatorConfig read_evaluator_config(ConfigNode root);

struct EvaluatorReport {
  double test_accuracy = 0;
  int64_t steps = 0;
  double seconds = 0;  // wall time of the run, summed over resumed calls (work lost to a kill not counted)
  int64_t train_size = 0, test_size = 0;
};

// Trains into `out` (created): checkpoint.pt every checkpoint_every steps (resumed when it exists and
// was written with the same config_text), metrics.csv/.jsonl, loss.png, accuracy.png,
// evaluator.safetensors, config.resolved.toml (= config_text) and evaluator.json.
EvaluatorReport train_evaluator(const EvaluatorConfig& cfg, const std::filesystem::path& out, bool progress,
                                const std::string& config_text);

}  // namespace retort
