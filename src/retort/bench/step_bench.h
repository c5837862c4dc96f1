// `retort bench-step`: the wall time of one step of a workload.
//  * mlp: one training step (forward, denoising loss, backward, AdamW) of the MLP denoiser, the same
//    step that bench/python/mlp_step.py times in PyTorch;
//  * hash-encoding: the hash-grid encoding's forward and backward at generate3d's sizes (one 32 px
//    render at 64 samples per ray = 65536 points; configs/text3d.toml's grid), the CPU kernel and the
//    vectorised tensor path alternated in one process, with their ratio.
#pragma once
#include <string>
#include <vector>

#include "retort/core/runtime.h"

namespace retort {

struct StepBenchOptions {
  std::string workload = "mlp";  // mlp | hash-encoding
  int64_t batch = 256, dim = 2, hidden = 128, blocks = 2;  // mlp; hash-encoding: batch = points
  int64_t steps = 500, warmup = 50;
  RuntimeOptions runtime;
};

// The workload names, in --workload's order.
const std::vector<std::string>& step_bench_workloads();
// Returns one JSON line: {"impl": "libtorch", "ms_per_step": ..., ...}; hash-encoding:
// {"workload": "hash-encoding", "kernel_ms": ..., "vectorised_ms": ..., "speedup": ...} (medians).
std::string run_step_bench(const StepBenchOptions& opts);

}  // namespace retort
