// Self-describing checkpoints: named modules, optimiser states, the step and the RNG state in one
// file, written to a temporary name and renamed so a crash never leaves a half-written file.
#pragma once
#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "retort/core/rng.h"

namespace retort {

struct CheckpointParts {
  std::map<std::string, torch::nn::Module*> modules;
  std::map<std::string, torch::optim::Optimizer*> optimizers;
  // Plain numbers a run carries on (a run's training seconds). A checkpoint written before one
  // existed leaves it as it was.
  std::map<std::string, double*> scalars;
};

// A run's wall seconds since step 0, over every invocation that led to it. Register `seconds` in
// CheckpointParts::scalars; after loading, resume(t0) counts on from the checkpoint's value with
// this invocation's time measured from t0; now() is the total so far.
class RunSeconds {
 public:
  using Clock = std::chrono::steady_clock;
  double seconds = 0.0;
  void resume(Clock::time_point t0 = Clock::now()) {
    before_ = seconds;
    t0_ = t0;
  }
  double now() const { return before_ + std::chrono::duration<double>(Clock::now() - t0_).count(); }

 private:
  double before_ = 0.0;
  Clock::time_point t0_ = Clock::now();
};

void save_checkpoint(const std::filesystem::path& path, const CheckpointParts& parts, int64_t step,
                     const Rng& rng, const std::string& config_text);
// Decides whether a checkpoint written with config `stored` continues a run with this config.
using SameRun = std::function<bool(const std::string& stored)>;
// Restores into `parts` and `rng`, returns the step. Throws IoError naming the file when it is
// unreadable or was written by a different config: `same_run`, or by default the text must equal
// `config_text`. The checkpoint then records `config_text` when it is next saved.
int64_t load_checkpoint(const std::filesystem::path& path, const CheckpointParts& parts, Rng& rng,
                        const std::string& config_text, const SameRun& same_run = {});
// A warm start from a checkpoint written by any config: the weights of those `modules` the file
// holds (their names go to `loaded`), not optimisers, RNG or step; returns the checkpoint's step.
// A module of another architecture (a tensor's shape differs) throws IoError naming the file.
int64_t load_checkpoint_weights(const std::filesystem::path& path,
                                const std::map<std::string, torch::nn::Module*>& modules,
                                std::vector<std::string>* loaded = nullptr);
// Throws load_checkpoint's IoError when `path` exists and was written by a different config; lets a
// command refuse a folder before it writes anything into it. Returns the checkpoint's step (0 when
// there is none).
int64_t require_same_config(const std::filesystem::path& path, const std::string& config_text,
                         const SameRun& same_run = {});
// Accepts a checkpoint whose config differs from `config_text` only in `[table] steps` and in
// [runtime]: where a run stops and how fast it goes, not what it computes. A finished run then
// continues when rerun with more steps (for runs whose schedules do not depend on the total).
SameRun same_run_but_length(const std::string& config_text, const std::string& table);

}  // namespace retort
