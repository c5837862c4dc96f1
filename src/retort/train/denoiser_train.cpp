#include "retort/train/denoiser_train.h"

#include <fmt/format.h>

#include <chrono>
#include <optional>

#include "retort/core/error.h"
#include "retort/dist/world.h"
#include "retort/plot/curves.h"
#include "retort/train/checkpoint.h"
#include "retort/train/distill_loop.h"
#include "retort/train/ema.h"
#include "retort/train/metrics_log.h"
#include "retort/run/progress.h"
#include "retort/run/run_folder.h"

namespace retort {

const OptionTable<DenoiserTrainOptions>& denoiser_train_option_table() {
  using O = DenoiserTrainOptions;
  static const auto table = OptionTable<O>()
      .integer("steps", &O::steps, 1, 100'000'000, "training steps (where to stop: rerun with more to continue)")
      .integer("batch", &O::batch, 1, 1'000'000, "samples per step")
      .number("lr", &O::lr, 1e-10, 10, "AdamW learning rate (constant after warm-up)")
      .integer("warmup", &O::warmup, 0, 100'000'000, "linear learning-rate warm-up steps")
      .number("weight_decay", &O::weight_decay, 0, 10, "AdamW weight decay")
      .number("grad_clip", &O::grad_clip, 0, 1e9, "gradient-norm clip (0 = none)")
      .number("ema", &O::ema, 0, 1, "EMA decay of the saved weights")
      .number("cond_drop", &O::cond_drop, 0, 1, "probability of training a sample unconditionally (for CFG)")
      .flag("regressor", &O::regressor,
            "train at t = 1 only: from pure noise the loss is an MSE on x0, so the network becomes a deterministic "
            "regressor of the mean sample given the condition (sample it with 1 step)")
      .integer("seed", &O::seed, 0, INT64_MAX, "random seed (initial weights and batches)")
      .integer("log_every", &O::log_every, 1, 1'000'000, "steps per metrics row")
      .integer("checkpoint_every", &O::checkpoint_every, 1, 100'000'000, "steps per checkpoint")
      .include(non_finite_option_table(), &O::nonfinite);
  return table;
}

TeacherPair make_teacher_pair(const TeacherModel& m, uint64_t seed, const torch::Device& device) {
  torch::manual_seed(seed);
  Schedule schedule(m.schedule);
  TeacherPair p{UNetDenoiser(m.net, schedule, m.prediction), UNetDenoiser(m.net, schedule, m.prediction)};
  copy_weights(*p.model, *p.ema);
  freeze(*p.ema);
  p.model->to(device);
  p.ema->to(device);
  return p;
}

const OptionTable<TeacherModel>& teacher_prediction_option_table() {
  static const auto table = OptionTable<TeacherModel>().named(
      "prediction", &TeacherModel::prediction, {"eps", "x0", "v"}, "what the network predicts");
  return table;
}

DenoiserDraw draw_denoiser_inputs(const DenoiserTrainOptions& opts, const DiffusionModel& model,
                                  const DenoiserBatch& batch, Rng& rng, const torch::Device& device) {
  const auto& x0 = batch.x0;
  const int64_t B = x0.size(0), T = model.schedule.options().steps;
  DenoiserDraw d;
  d.cond = batch.cond;
  if (d.cond.labels.defined() || d.cond.concat.defined()) d.cond = d.cond.dropped(rng.rand({B}, device) < opts.cond_drop);
  // Discrete step k uniform in [0, T), at t = (k + 1) / T (schedule.h); a regressor: always t = 1.
  d.t = (rng.randint(0, T, {B}, device).to(torch::kFloat32) + 1) / double(T);
  if (opts.regressor) d.t = torch::ones_like(d.t);
  auto eps = rng.randn(x0.sizes(), device);
  auto abar = model.schedule.alpha_bar(d.t).to(torch::kFloat32);
  auto alpha = abar.sqrt(), sigma = (1 - abar).sqrt();
  d.xt = per_sample(alpha, x0) * x0 + per_sample(sigma, x0) * eps;
  d.target = training_target(model.prediction, x0, eps, alpha, sigma);
  return d;
}

torch::Tensor denoiser_loss(UNetDenoiserImpl& model, const torch::Tensor& xt, const torch::Tensor& t,
                            const Cond& cond, const torch::Tensor& target) {
  return (model.net->forward(xt, t, cond) - target).pow(2).mean();
}

DenoiserReport train_denoiser(const DenoiserTrainOptions& opts, UNetDenoiser& model, UNetDenoiser& ema,
                              const DenoiserBatchFn& next_batch, Rng& rng, const torch::Device& device,
                              const std::filesystem::path& out, bool progress, const std::string& config_text,
                              int64_t stop_after, const std::string& name) {
  namespace fs = std::filesystem;
  auto t0 = std::chrono::steady_clock::now();
  auto params = trainable_parameters(*model);
  auto opt = make_adamw(params, OptimOptions{opts.lr, 0.9, 0.999, opts.weight_decay, opts.grad_clip});

  RunSeconds seconds;
  CheckpointParts parts{{{"model", model.get()}, {"ema", ema.get()}}, {{"optimizer", &opt}}, {{"seconds", &seconds.seconds}}};
  const auto ckpt = out / "checkpoint.pt";
  // The learning rate is constant after warm-up, so [train] steps may grow between invocations;
  // the run may also continue on another device or thread count.
  const auto same_run = same_run_but_length(config_text, "train");
  // Data parallelism (dist/world.h): [train] batch is the global batch. Every rank draws all of it
  // from the one seeded stream and trains on its slice, so the run, its resume and a resume at
  // another world size see the same samples and noise as one process.
  const World& w = world();
  const auto [b0, b1] = rank_slice(opts.batch, "train.batch");
  auto part = [&, b0 = b0, b1 = b1](const torch::Tensor& x) { return w.distributed() ? x.slice(0, b0, b1) : x; };
  int64_t step = fs::exists(ckpt) ? load_checkpoint(ckpt, parts, rng, config_text, same_run) : 0;
  if (step > opts.steps)
    throw ConfigError(fmt::format("{}: the checkpoint is at step {}, beyond train.steps = {}; raise it or use "
                                  "another output folder", ckpt.string(), step, opts.steps));
  for (auto* m : {model.get(), ema.get()}) {
    broadcast_from_rank0(m->parameters());
    broadcast_from_rank0(m->buffers());
  }
  // Rank 0 alone writes; after the check, so a refused run changes nothing.
  write_resolved_config(out, config_text);
  seconds.resume(t0);
  std::optional<MetricsLog> log;
  if (w.writes()) log.emplace(out, step);
  ProgressBar bar("train-" + name, opts.steps, step, progress && w.writes());
  double window = 0;
  int64_t window_n = 0;
  NonFiniteGuard guard(opts.nonfinite);
  DenoiserReport report;
  model->train();
  const int64_t stop = stop_after > 0 ? std::min(opts.steps, step + stop_after) : opts.steps;
  while (step < stop) {
    auto [t, xt, target, cond] = draw_denoiser_inputs(opts, *model, next_batch(rng, opts.batch, device), rng, device);
    if (w.distributed()) cond = cond.slice(b0, b1 - b0, device);
    auto loss = denoiser_loss(*model, part(xt), part(t), cond, part(target));
    const double lr = opts.lr * std::min(1.0, double(step + 1) / double(std::max<int64_t>(opts.warmup, 1)));
    for (auto& g : opt.param_groups()) static_cast<torch::optim::AdamWOptions&>(g.options()).lr(lr);
    opt.zero_grad();
    loss.backward();
    // The norm is of the global gradient: every rank refuses alike.
    const double gnorm = finalize_gradients(params, opts.grad_clip);
    if (guard.admit(gnorm, name + " gradient (norm)", step)) {
      opt.step();
      ema_update(*ema, *model, ema_decay(opts.ema, step));
      window += loss.item<double>();
      ++window_n;
    }
    guard.end_step(step);
    ++step;
    if (step % opts.log_every == 0 || step == opts.steps) {
      report.final_loss = mean_over_ranks(window / window_n);
      if (log) log->write(step, {{"loss", report.final_loss}, {"grad_norm", gnorm}, {"lr", lr}});
      window = 0;
      window_n = 0;
    }
    if ((step % opts.checkpoint_every == 0 || step == stop) && w.writes()) {
      seconds.seconds = seconds.now();
      save_checkpoint(ckpt, parts, step, rng, config_text);
    }
    bar.update(step, fmt::format("loss {:.4f}", report.final_loss));
  }
  bar.finish();
  if (window_n > 0) report.final_loss = mean_over_ranks(window / window_n);  // the steps since the last log row
  report.steps = step;
  report.finished = step >= opts.steps;
  if (report.finished && w.writes()) plot_metrics_csv(out / "metrics.csv", out / "loss.png", {"loss"}, name + " denoising loss", true);
  report.seconds = seconds.now();
  return report;
}

}  // namespace retort
