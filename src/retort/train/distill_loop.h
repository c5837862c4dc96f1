// The training loop shared by every distillation run: per generator step, a generator update with
// the objective's generator loss (Algorithm 1, line 6), then `critic_steps` updates of the fake
// score / discriminator (line 7; the two-time-scale rule of DMD2 when > 1). Gradient clipping sits
// in finalize_gradients, the one place where gradients are final (the data-parallel all-reduce is
// there); the non-finite guard (non_finite_guard.h) judges its norm and the losses. Checkpoints every `checkpoint_every` steps; a killed run resumes
// from its last one. Under data parallelism (dist/world.h) `batch` is the global batch: every rank
// draws all of its randomness from the one stream and computes its rows (Share), rank 0 writes.
#pragma once
#include <filesystem>
#include <functional>
#include <map>
#include <string>

#include <torch/torch.h>

#include "retort/core/options.h"
#include "retort/core/rng.h"
#include "retort/diffusion/timesteps.h"
#include "retort/distill/objective.h"
#include "retort/generators/generator.h"
#include "retort/train/checkpoint.h"
#include "retort/train/multi_tensor_adamw.h"
#include "retort/train/non_finite_guard.h"

namespace retort {

struct OptimOptions {
  double lr = 1e-3;
  double beta1 = 0.9, beta2 = 0.999;
  double weight_decay = 0.0;
  double grad_clip = 10.0;  // max global norm; 0 disables
  double half_life = 0.0;   // updates over which the learning rate halves; 0 = constant
};

struct DistillLoopOptions {
  int64_t steps = 2000;
  int64_t batch = 256;
  int64_t critic_steps = 1;   // critic updates per generator update
  bool share_noise = true;    // the first critic update reuses the generator's x0, t and eps
  OptimOptions gen_optim;
  OptimOptions critic_optim;
  TimeRange time;
  int64_t log_every = 50;
  int64_t checkpoint_every = 500;
  bool progress = true;
  std::string label = "distill";
  double ema = 0.0;  // decay of the generator's moving average (DistillLoop::track_ema)
  // Updates the average had already seen when this run began (a warm start from another run's
  // average): its warm-up counts them, so it does not restart at decay 0.1.
  int64_t ema_prior_updates = 0;
  NonFiniteOptions nonfinite;
  // Called after each update (the generator's and its critic updates) with the update's index and
  // wall seconds, before logging and checkpointing: `bench-step` times a pipeline's own loop so.
  std::function<void(int64_t step, double seconds)> on_update;
  // Called with the updates done, the loop's modules (the checkpoint's names: generator,
  // generator_ema, fake, disc) and its Rng, before the first update and after each (after
  // on_update): `bench-step --dump` records an update's start, draws and result so.
  std::function<void(int64_t done, const std::map<std::string, torch::nn::Module*>& modules, Rng& rng)> on_modules;
};

// The keys of DistillLoopOptions (loop_options.cpp); a pipeline reads the rows it uses.
const OptionTable<DistillLoopOptions>& distill_loop_option_table();

// Exact or data-set samples of the target, with their conditions.
using RealSampler = std::function<GenBatch(int64_t n, Rng& rng)>;

// Averages the gradients over the ranks and clips them to `clip` (if > 0). Returns the pre-clip
// global norm, NaN or infinite when a gradient is: the caller's NonFiniteGuard judges it.
double finalize_gradients(const std::vector<torch::Tensor>& params, double clip);
// Throws ConfigError when the checkpoint `ckpt`, at `checkpoint_step`, is beyond the `steps` asked for.
void require_within_steps(const std::filesystem::path& ckpt, int64_t checkpoint_step, int64_t steps);
MultiTensorAdamW make_adamw(const std::vector<torch::Tensor>& params, const OptimOptions& o);
// The learning rate of update `step` (0-based): o.lr * 0.5^(step / o.half_life). It depends on the
// update's index only, not on the total, so raising `steps` continues a run exactly.
double decayed_lr(const OptimOptions& o, int64_t step);

class DistillLoop {
 public:
  DistillLoop(DistillLoopOptions opts, Generator& gen, Objective& objective, Models models,
              torch::nn::Module* fake_module, RealSampler real, const Schedule& schedule,
              torch::Device device);
  // Runs to opts.steps, resuming from DIR/checkpoint.pt when it exists and matches config_text
  // (or, given, `same_run`). A checkpoint beyond opts.steps is refused.
  void run(const std::filesystem::path& dir, Rng& rng, const std::string& config_text, const SameRun& same_run = {});
  // Keeps `average` (a module of the generator's architecture, holding its initial weights) the
  // moving average of the generator with decay opts.ema (warm-up: ema_decay), updated after each
  // generator update and carried by the checkpoint as "generator_ema".
  void track_ema(torch::nn::Module& average) { gen_ema_ = &average; }
  int64_t step() const { return step_; }
  // The step run() resumed from (0 for a fresh run).
  int64_t start_step() const { return start_step_; }
  // Wall seconds spent in the loop since step 0, over every invocation that led here (carried by
  // the checkpoint; logged as `seconds`).
  double seconds() const { return seconds_.seconds; }

 private:
  // Times and noise for x0, this rank's rows of a batch of opts.batch (drawn for all of it).
  NoiseDraw draw_noise(const torch::Tensor& x0, Rng& rng) const;
  // The mean of a logged value over the ranks (itself on one process).
  double global(double value) const;
  std::map<std::string, double> critic_update(const GenBatch& shared, const NoiseDraw& shared_noise, int64_t k,
                                              Rng& rng);

  DistillLoopOptions opts_;
  Generator& gen_;
  Objective& objective_;
  Models models_;
  torch::nn::Module* fake_module_;
  torch::nn::Module* gen_ema_ = nullptr;
  RealSampler real_;
  Schedule schedule_;
  torch::Device device_;
  Share share_;  // this rank's rows of every batch (dist/world.h)
  std::vector<torch::Tensor> gen_params_, critic_params_;
  std::unique_ptr<MultiTensorAdamW> gen_opt_, critic_opt_;
  int64_t step_ = 0, start_step_ = 0;
  RunSeconds seconds_;
  NonFiniteGuard guard_;
};

}  // namespace retort
