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

TeacherConfig read_teacher_config(ConfigNode root) {
  TeacherConfig c;
  c.data = read_data_config(root.table("data"));
  auto m = root.table("model");
  c.conditional = m.boolean("conditional", c.conditional);
  auto widths = m.numbers("widths", {32, 64, 64});
  c.model.widths.clear();
  for (double w : widths) {
    if (w < 1 || w != std::floor(w)) m.fail("widths", fmt::format("{} is not a positive integer", w));
    c.model.widths.push_back(int64_t(w));
  }
  if (c.model.widths.empty()) m.fail("widths", "needs at least one level");
  c.model.blocks = m.integer("blocks", c.model.blocks, 1, 16);
  c.model.time_dim = m.integer("time_dim", c.model.time_dim, 8, 4096);
  if (c.model.time_dim % 2) m.fail("time_dim", "must be even (sin and cos halves)");
  c.model.groups = m.integer("groups", c.model.groups, 1, 256);
  for (auto w : c.model.widths)
    if (w % c.model.groups) m.fail("groups", fmt::format("{} does not divide width {}", c.model.groups, w));
  c.model.heads = m.integer("heads", c.model.heads, 0, 64);
  if (c.model.heads > 0 && c.model.widths.back() % c.model.heads)
    m.fail("heads", fmt::format("{} does not divide the lowest width {}", c.model.heads, c.model.widths.back()));
  c.model.dropout = m.number("dropout", 0.0, 0.0, 0.9);
  c.prediction = parse_prediction(m.choice("prediction", "v", {"eps", "x0", "v"}));
  auto s = root.table("schedule");
  c.schedule.kind = parse_schedule_kind(s.choice("kind", "cosine", schedule_kind_names()));
  c.schedule.steps = s.integer("steps", 1000, 2, 100000);
  auto t = root.table("train");
  c.steps = t.integer("steps", c.steps, 1, 100'000'000);
  c.batch = t.integer("batch", c.batch, 1, 1'000'000);
  c.lr = t.number("lr", c.lr, 1e-9, 10);
  c.warmup = t.integer("warmup", c.warmup, 0, 100'000'000);
  c.weight_decay = t.number("weight_decay", c.weight_decay, 0, 10);
  c.grad_clip = t.number("grad_clip", c.grad_clip, 0, 1e9);
  c.ema = t.number("ema", c.ema, 0, 1);
  c.cond_drop = t.number("cond_drop", c.cond_drop, 0, 1);
  c.seed = uint64_t(t.integer("seed", 0, 0, INT64_MAX));
  c.log_every = t.integer("log_every", c.log_every, 1, 1'000'000);
  c.checkpoint_every = t.integer("checkpoint_every", c.checkpoint_every, 1, 100'000'000);
  auto p = root.table("preview");
  c.preview.steps = p.integer("steps", c.preview.steps, 1, 10000);
  c.preview.cfg = p.number("cfg", c.preview.cfg, 0, 100);
  c.preview_classes = p.integer("classes", c.preview_classes, 0, 100000);
  c.preview_per_class = p.integer("per_class", c.preview_per_class, 1, 1000);
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
