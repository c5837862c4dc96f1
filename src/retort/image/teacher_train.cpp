#include "retort/image/teacher_train.h"

#include <fmt/format.h>

#include <chrono>
#include <sstream>

#include "retort/core/error.h"
#include "retort/core/runtime_config.h"
#include "retort/io/png.h"
#include "retort/plot/curves.h"
#include "retort/train/checkpoint.h"
#include "retort/train/distill_loop.h"
#include "retort/train/ema.h"
#include "retort/train/metrics_log.h"
#include "retort/run/progress.h"
#include "retort/run/run_folder.h"

namespace retort {

const std::vector<std::pair<std::string, const OptionTable<TeacherConfig>*>>& teacher_option_tables() {
  using C = TeacherConfig;
  static const auto model = [] {
    OptionTable<C> t;
    t.flag("conditional", &C::conditional, "class-conditional (false: labels ignored, an unconditional model)")
        .include(unet_option_table(), &C::model, {"widths", "blocks", "time_dim", "groups", "heads", "dropout"})
        .named("prediction", &C::prediction, {"eps", "x0", "v"},
               "what the network predicts: the noise, the clean image or the velocity");
    return t;
  }();
  static const auto schedule = [] {
    OptionTable<C> t;
    t.include(schedule_option_table(), &C::schedule, {"kind", "steps"});
    return t;
  }();
  static const auto train = [] {
    OptionTable<C> t;
    t.integer("steps", &C::steps, 1, 100'000'000, "optimiser steps (raise and rerun to continue a finished run)")
        .integer("batch", &C::batch, 1, 1'000'000, "images per step")
        .number("lr", &C::lr, 1e-9, 10, "AdamW learning rate, constant after the warm-up")
        .integer("warmup", &C::warmup, 0, 100'000'000, "linear learning-rate warm-up steps")
        .number("weight_decay", &C::weight_decay, 0, 10, "AdamW weight decay")
        .number("grad_clip", &C::grad_clip, 0, 1e9, "gradient norm clip (0: none)")
        .number("ema", &C::ema, 0, 1, "EMA decay of the saved weights")
        .number("cond_drop", &C::cond_drop, 0, 1, "probability of training a sample as unconditional (for CFG)")
        .integer("seed", &C::seed, 0, INT64_MAX, "seed of the initialisation, batches and noise")
        .integer("log_every", &C::log_every, 1, 1'000'000, "steps per metrics row")
        .integer("checkpoint_every", &C::checkpoint_every, 1, 100'000'000, "steps per checkpoint");
    return t;
  }();
  static const auto preview = [] {
    OptionTable<C> t;
    t.integer("steps", [](C& c) -> int64_t& { return c.preview.steps; }, 1, 10000, "DDIM steps of samples.png")
        .number("cfg", [](C& c) -> double& { return c.preview.cfg; }, 0, 100, "guidance scale of samples.png")
        .integer("classes", &C::preview_classes, 0, 100000,
                 "rows of samples.png: 0 = every class, else that many spread evenly")
        .integer("per_class", &C::preview_per_class, 1, 1000, "columns of samples.png");
    return t;
  }();
  static const std::vector<std::pair<std::string, const OptionTable<C>*>> tables = {
      {"model", &model}, {"schedule", &schedule}, {"train", &train}, {"preview", &preview}};
  return tables;
}

TeacherConfig read_teacher_config(ConfigNode root) {
  TeacherConfig c;
  c.data = read_data_config(root.table("data"));
  for (const auto& [name, table] : teacher_option_tables()) {
    auto n = root.table(name);
    table->read(n, c);
  }
  c.runtime = read_runtime_options(root.table("runtime"));
  root.finish();
  return c;
}


TeacherReport train_teacher(const TeacherConfig& cfg_in, const std::filesystem::path& out, bool progress,
                            const std::string& config_text, int64_t stop_after) {
  namespace fs = std::filesystem;
  auto t0 = std::chrono::steady_clock::now();
  TeacherConfig cfg = cfg_in;
  auto device = start_run(out, cfg.runtime);
  auto data = load_dataset(cfg.data, "train");
  const int64_t N = data.images.size(0);
  if (N == 0) throw Error("the training set is empty");
  if (data.images.size(2) != data.images.size(3))
    throw Error(fmt::format("images must be square, got {}x{}", data.images.size(2), data.images.size(3)));
  cfg.model.channels = data.images.size(1);
  cfg.model.resolution = data.images.size(2);
  cfg.model.num_classes = cfg.conditional ? data.num_classes : 0;
  if (cfg.conditional && data.num_classes == 0)
    throw ConfigError("model.conditional = true but the data set has no labels; set it to false");

  torch::manual_seed(cfg.seed);
  Rng rng(cfg.seed);
  Schedule schedule(cfg.schedule);
  UNetDenoiser model(cfg.model, schedule, cfg.prediction), ema(cfg.model, schedule, cfg.prediction);
  copy_weights(*model, *ema);
  freeze(*ema);
  model->to(device);
  ema->to(device);
  auto images = data.images.to(device);
  auto labels = data.labels.defined() ? data.labels.to(device) : torch::Tensor();
  auto params = trainable_parameters(*model);
  auto opt = make_adamw(params, OptimOptions{cfg.lr, 0.9, 0.999, cfg.weight_decay, cfg.grad_clip});

  RunSeconds seconds;
  CheckpointParts parts{{{"model", model.get()}, {"ema", ema.get()}}, {{"optimizer", &opt}}, {{"seconds", &seconds.seconds}}};
  const auto ckpt = out / "checkpoint.pt";
  // [train] steps only says where to stop (the learning rate is constant after warm-up), so a
  // finished run continues when rerun with more steps, as if it had been asked for them at first;
  // and it may continue on another device or thread count.
  const auto same_run = same_run_but_length(config_text, "train");
  int64_t step = fs::exists(ckpt) ? load_checkpoint(ckpt, parts, rng, config_text, same_run) : 0;
  if (step > cfg.steps)
    throw ConfigError(fmt::format("{}: the checkpoint is at step {}, beyond train.steps = {}; raise it or use "
                                  "another output folder", ckpt.string(), step, cfg.steps));
  write_text_atomic(out / "config.resolved.toml", config_text);  // after the check: a refused run changes nothing
  seconds.resume(t0);
  MetricsLog log(out, step);
  ProgressBar bar("train-teacher", cfg.steps, step, progress);
  double window = 0;
  int64_t window_n = 0;
  TeacherReport report;
  model->train();
  const int64_t T = cfg.schedule.steps;
  const int64_t stop = stop_after > 0 ? std::min(cfg.steps, step + stop_after) : cfg.steps;
  while (step < stop) {
    auto idx = rng.randint(0, N, {cfg.batch}, device);
    auto x0 = images.index_select(0, idx);
    Cond cond;
    if (cfg.model.num_classes > 0) {
      auto y = labels.index_select(0, idx);
      auto drop = rng.rand({cfg.batch}, device) < cfg.cond_drop;
      cond = Cond::classes(torch::where(drop, torch::full_like(y, kNullClass), y));
    }
    // Discrete step k uniform in [0, T), at t = (k + 1) / T (schedule.h).
    auto t = (rng.randint(0, T, {cfg.batch}, device).to(torch::kFloat32) + 1) / double(T);
    auto eps = rng.randn(x0.sizes(), device);
    auto abar = schedule.alpha_bar(t).to(torch::kFloat32);
    auto alpha = abar.sqrt(), sigma = (1 - abar).sqrt();
    auto xt = per_sample(alpha, x0) * x0 + per_sample(sigma, x0) * eps;
    auto target = training_target(cfg.prediction, x0, eps, alpha, sigma);
    auto loss = (model->net->forward(xt, t, cond) - target).pow(2).mean();
    const double lr = cfg.lr * std::min(1.0, double(step + 1) / double(std::max<int64_t>(cfg.warmup, 1)));
    for (auto& g : opt.param_groups()) static_cast<torch::optim::AdamWOptions&>(g.options()).lr(lr);
    opt.zero_grad();
    loss.backward();
    double gnorm = finalize_gradients(params, cfg.grad_clip, "teacher", step);
    opt.step();
    ema_update(*ema, *model, ema_decay(cfg.ema, step));
    ++step;
    window += loss.item<double>();
    ++window_n;
    if (step % cfg.log_every == 0 || step == cfg.steps) {
      report.final_loss = window / window_n;
      log.write(step, {{"loss", report.final_loss}, {"grad_norm", gnorm}, {"lr", lr}});
      window = 0;
      window_n = 0;
    }
    if (step % cfg.checkpoint_every == 0 || step == stop) {
      seconds.seconds = seconds.now();
      save_checkpoint(ckpt, parts, step, rng, config_text);
    }
    bar.update(step, fmt::format("loss {:.4f}", report.final_loss));
  }
  bar.finish();
  if (window_n > 0) report.final_loss = window / window_n;  // the steps since the last log row
  report.steps = step;
  if (step < cfg.steps) {  // stopped early: rerun to continue
    report.seconds = seconds.now();
    return report;
  }
  plot_metrics_csv(out / "metrics.csv", out / "loss.png", {"loss"}, "teacher denoising loss", true);
  save_unet(out / "teacher.safetensors", ema);
  Rng preview_rng(cfg.seed + 1);
  auto preview_labels = grid_labels(cfg.model.num_classes, cfg.preview_per_class);
  const int64_t C = cfg.model.num_classes;
  if (cfg.preview_classes > 0 && cfg.preview_classes < C) {  // rows of classes spread over 0..C-1
    auto rows = torch::div(torch::arange(cfg.preview_classes, torch::kInt64) * C, cfg.preview_classes, "floor");
    preview_labels = rows.repeat_interleave(cfg.preview_per_class);
  }
  auto grid = sample_teacher(ema, preview_labels, cfg.preview, preview_rng);
  write_png_grid(out / "samples.png", grid, cfg.preview_per_class);
  report.seconds = seconds.now();
  return report;
}

}  // namespace retort
