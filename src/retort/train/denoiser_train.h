// The denoising-loss training loop every diffusion teacher shares (the image teacher, the video
// teacher of novel-view synthesis): AdamW with linear warm-up, condition dropout for classifier-free
// guidance, an EMA of the weights, metrics, a progress bar, and checkpoints that carry the config,
// step, optimiser, EMA and RNG state, so a killed run resumes to the weights an uninterrupted run
// reaches. The pipeline builds the model and says how to draw a batch; this loop does the rest.
#pragma once
#include <fmt/format.h>

#include <cmath>
#include <filesystem>
#include <functional>
#include <string>

#include <torch/torch.h>

#include "retort/core/options.h"
#include "retort/core/rng.h"
#include "retort/models/unet.h"
#include "retort/train/non_finite_guard.h"

namespace retort {

struct DenoiserTrainOptions {
  int64_t steps = 20000;
  int64_t batch = 128;
  double lr = 2e-4;
  int64_t warmup = 500;        // linear learning-rate warm-up steps
  double weight_decay = 0.0;
  double grad_clip = 1.0;
  double ema = 0.999;          // EMA decay of the saved weights
  double cond_drop = 0.1;      // probability of training a sample as unconditional (for CFG)
  // Train at t = 1 only. The input is then pure noise, independent of x0, so the v-loss is an MSE on
  // x0 whose optimum is E[x0 | condition]: a regressor, sampled with one step (bench-nvs's MSE row).
  bool regressor = false;
  uint64_t seed = 0;
  int64_t log_every = 50;
  int64_t checkpoint_every = 500;
  NonFiniteOptions nonfinite;
};

// The [train] keys of every teacher.
const OptionTable<DenoiserTrainOptions>& denoiser_train_option_table();
// The network, its prediction type and schedule: what a teacher file describes.
struct TeacherModel {
  UNetOptions net;  // channels, resolution, classes, frames and condition channels come from the data
  Prediction prediction = Prediction::V;  // v stays well conditioned at t = 1, where students start
  ScheduleOptions schedule{ScheduleKind::Cosine, 1000, false};
};
// `prediction` as a [model] row (beside the UNet's own keys).
const OptionTable<TeacherModel>& teacher_prediction_option_table();

// The network a teacher run trains and its EMA copy (same initial weights, frozen), both on
// `device`; LibTorch is seeded with `seed` first, so the initial weights follow the seed.
struct TeacherPair {
  UNetDenoiser model{nullptr}, ema{nullptr};
};
TeacherPair make_teacher_pair(const TeacherModel& m, uint64_t seed, const torch::Device& device);

// A training batch: clean samples x0 [B, ...] and their condition (labels and/or concat channels;
// the loop applies condition dropout to it).
struct DenoiserBatch {
  torch::Tensor x0;
  Cond cond;
};
// Draws one batch of `batch` samples on `device` from `rng` (the loop's own stream, so resumed runs
// draw the same batches).
using DenoiserBatchFn = std::function<DenoiserBatch(Rng& rng, int64_t batch, const torch::Device& device)>;

// One draw of the denoising objective for a batch, in the training loop's order of `rng` draws:
// condition dropout (for CFG), t, noise, then x_t and the prediction target. `bench-step --workload
// unet-train` times the trainer's step through this too.
struct DenoiserDraw {
  torch::Tensor t, xt, target;
  Cond cond;
};
DenoiserDraw draw_denoiser_inputs(const DenoiserTrainOptions& opts, const DiffusionModel& model,
                                  const DenoiserBatch& batch, Rng& rng, const torch::Device& device);
// The teacher's loss: mean squared error of the network's raw output against the target.
torch::Tensor denoiser_loss(UNetDenoiserImpl& model, const torch::Tensor& xt, const torch::Tensor& t,
                            const Cond& cond, const torch::Tensor& target);

struct DenoiserReport {
  int64_t steps = 0;
  double final_loss = NAN;  // mean of the last logged window; NaN when this invocation ran no step
  // "final loss 0.1234", or "no steps in this invocation".
  std::string loss_text() const {
    return std::isfinite(final_loss) ? fmt::format("final loss {:.4f}", final_loss) : "no steps in this invocation";
  }
  double seconds = 0;     // wall time of the run, summed over resumed calls (work lost to a kill not counted)
  bool finished = false;  // steps reached opts.steps (else stopped early by stop_after)
};

// Trains `model` (on `device`; `ema` a frozen copy of it) in `out`: checkpoint.pt, metrics.csv/jsonl,
// loss.png, config.resolved.toml. `rng` must be seeded with opts.seed and used for nothing else
// since. `stop_after` > 0 ends this invocation (with a checkpoint) after that many steps; a rerun
// continues. [train] steps only says where to stop, so a finished run continues when rerun with more
// steps. Writing the model file and previews is the caller's, once `finished`.
DenoiserReport train_denoiser(const DenoiserTrainOptions& opts, UNetDenoiser& model, UNetDenoiser& ema,
                              const DenoiserBatchFn& next_batch, Rng& rng, const torch::Device& device,
                              const std::filesystem::path& out, bool progress, const std::string& config_text,
                              int64_t stop_after, const std::string& name);

}  // namespace retort
