// `retort bench-step`: the wall time of one training step (forward, denoising loss, backward,
// AdamW) of the MLP denoiser, the same step that bench/python/mlp_step.py times in PyTorch.
#pragma once
#include <string>

#include "retort/core/runtime.h"

namespace retort {

struct StepBenchOptions {
  int64_t batch = 256, dim = 2, hidden = 128, blocks = 2;
  int64_t steps = 500, warmup = 50;
  RuntimeOptions runtime;
};

// Returns one JSON line: {"impl": "libtorch", "ms_per_step": ..., ...}.
std::string run_step_bench(const StepBenchOptions& opts);

}  // namespace retort
