// `retort bench-step`: the wall time of one step of a workload.
//  * mlp: one training step (forward, denoising loss, backward, AdamW) of the MLP denoiser, the same
//    step that bench/python/mlp_step.py times in PyTorch;
//  * hash-encoding: the hash-grid encoding's forward and backward at generate3d's sizes (one 32 px
//    render at 64 samples per ray = 65536 points; configs/text3d.toml's grid), the CPU kernel and the
//    vectorised tensor path alternated in one process, with their ratio;
//  * field-render: the field's part of a generate3d iteration (a shaded, stratified batch x batch
//    training render of that grid at 64 samples per ray, and its backward), kernel against
//    vectorised encoding in the same way;
//  * unet-train: one step of the teacher trainer (train/denoiser_train.h: condition dropout, the
//    noised x_t at a random t, the MSE to the model's target, backward, gradient clip, AdamW, EMA)
//    on a saved UNet, by default the world teacher (configs/world-teacher.toml's network, batch 64);
//  * ddim-sample: DDIM sampling with classifier-free guidance (the conditional and null passes in one
//    batched call), as `retort sample` does it, by default of the Fashion-MNIST teacher;
//  * dmd2-update, fvgen-update, generate3d: one update of that pipeline's own training loop on its
//    shipped config (bench/pipeline_step_bench.h);
//  * peak: this machine's attainable GFLOP/s at the thread setting, a 3x3 conv (oneDNN) and a float32
//    GEMM at a few sizes (bench/op_profile.h), the roof the two UNet workloads are measured against.
// `profile` (unet-train, ddim-sample) runs the timed steps once more under LibTorch's profiler and adds
// where the time goes (op categories, top ops, time outside ops), FLOPs per step, the GFLOP/s achieved
// and its fraction of a peak measured in the same process (bench/op_profile.h).
// The two UNet workloads have a PyTorch twin in bench/python/unet.py (bench/python_compare.sh), and
// `dump` writes what that twin needs to check it computes the same function from the same weights.
#pragma once
#include <string>
#include <vector>

#include "retort/bench/op_profile.h"
#include "retort/core/runtime.h"

namespace retort {

struct StepBenchOptions {
  std::string workload = "mlp";  // step_bench_workloads()
  int64_t batch = 256, dim = 2, hidden = 128, blocks = 2;  // mlp; hash-encoding: batch = points; field-render: pixels per side;
                                                           // ddim-sample: batch = images per run
  int64_t steps = 500, warmup = 50;  // ddim-sample: a step is the sampling of `batch` images
  std::string weights;               // unet-train, ddim-sample: the UNet file ("" = the shipped one)
  int64_t sampler_steps = 50;        // ddim-sample: DDIM steps
  double cfg = 3.0;                  // ddim-sample: guidance scale (configs/world-teacher.toml's preview)
  std::string dump;                  // all but mlp, peak, hash-encoding, field-render: a check file for the Python twin
  std::string config;                // dmd2-update, fvgen-update, generate3d: the config ("" = the shipped one)
  std::vector<std::string> sets;     // ... and its --set overrides
  std::string hash_path = "kernel";  // generate3d: the hash grid's CPU path, kernel | tensor (the reference)
  bool profile = false;              // unet-train, ddim-sample: add the op profile and roofline fields
  PeakOptions peak;                  // peak, and profile's peak: shapes and rounds
  RuntimeOptions runtime;             // the thread and kernel policy (its device is not read: see `device`)
  std::string device;                 // unet-train, ddim-sample: "" = cpu; dmd2-update, fvgen-update,
                                      // generate3d: "" = the config's runtime.device
};

// The workload names, in --workload's order.
const std::vector<std::string>& step_bench_workloads();
// The shipped weights a UNet workload reads when `weights` is empty.
std::string default_step_bench_weights(const std::string& workload);
// Returns one JSON line: {"impl": "libtorch", "ms_per_step": ..., ...}; hash-encoding:
// {"workload": "hash-encoding", "kernel_ms": ..., "vectorised_ms": ..., "speedup": ...} (medians);
// unet-train: ms_per_step (median), batch, resolution, params; ddim-sample: ms_per_image,
// ms_per_sampler_step (from the median run); with `profile` also profile_report's fields; peak:
// {"workload": "peak", "shapes": [...], "best_gflops": {...}} (peak_json).
std::string run_step_bench(const StepBenchOptions& opts);

}  // namespace retort
