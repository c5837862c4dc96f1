#include "retort/image/evaluator_train.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cmath>
#include <optional>

#include "retort/core/error.h"
#include "retort/core/runtime_config.h"
#include "retort/core/rng.h"
#include "retort/dist/world.h"
#include "retort/plot/curves.h"
#include "retort/train/checkpoint.h"
#include "retort/train/distill_loop.h"
#include "retort/train/metrics_log.h"
#include "retort/run/progress.h"
#include "retort/run/run_folder.h"

namespace retort {
namespace {

// Warm-up then cosine decay to 0 at the last step: high early progress, a settled end.
double learning_rate(const EvaluatorConfig& c, int64_t step) {
  if (step < c.warmup) return c.lr * double(step + 1) / double(c.warmup);
  double t = double(step - c.warmup) / double(std::max<int64_t>(1, c.steps - c.warmup));
  return c.lr * 0.5 * (1 + std::cos(M_PI * std::min(1.0, t)));
}

void set_lr(torch::optim::AdamW& opt, double lr) {
  for (auto& group : opt.param_groups()) static_cast<torch::optim::AdamWOptions&>(group.options()).lr(lr);
}

// Random shifts (background-padded: -1 is black in [-1,1]) and horizontal flips, drawn from `rng`.
torch::Tensor augment(const torch::Tensor& x, const EvaluatorConfig& c, Rng& rng) {
  const int64_t B = x.size(0), H = x.size(2), W = x.size(3);
  auto out = x;
  if (c.shift > 0) {
    auto padded = torch::constant_pad_nd(x, {c.shift, c.shift, c.shift, c.shift}, -1.0);
    auto offsets = rng.randint(0, 2 * c.shift + 1, {B, 2});
    auto off = offsets.accessor<int64_t, 2>();
    std::vector<torch::Tensor> crops;
    crops.reserve(B);
    for (int64_t i = 0; i < B; ++i) crops.push_back(padded[i].narrow(1, off[i][0], H).narrow(2, off[i][1], W));
    out = torch::stack(crops);
  }
  if (c.flip) {
    auto mask = (rng.rand({B}) < 0.5).to(x.device()).view({B, 1, 1, 1});
    out = torch::where(mask, out.flip({3}), out);
  }
  return out;
}

double accuracy(Classifier& model, const torch::Tensor& images, const torch::Tensor& labels, torch::Device device) {
  torch::NoGradGuard no_grad;
  const bool was_training = model->is_training();
  model->eval();
  int64_t correct = 0;
  for (int64_t i = 0; i < images.size(0); i += 500) {
    int64_t n = std::min<int64_t>(500, images.size(0) - i);
    auto pred = model->forward(images.narrow(0, i, n).to(device)).argmax(1);
    correct += pred.eq(labels.narrow(0, i, n).to(device)).sum().item<int64_t>();
  }
  model->train(was_training);
  return double(correct) / double(std::max<int64_t>(1, images.size(0)));
}

void check_labelled(const ImageDataset& d, const std::string& split) {
  if (!d.labels.defined() || d.num_classes < 2)
    throw ConfigError(fmt::format("data ({} split): the evaluator needs labelled data with at least 2 classes", split));
  if (d.images.size(0) < 1) throw ConfigError(fmt::format("data ({} split): no images", split));
}

}  // namespace

const OptionTable<EvaluatorConfig>& evaluator_option_table() {
  static const auto table = [] {
    using C = EvaluatorConfig;
    OptionTable<C> t;
    t.integer("steps", &C::steps, 1, 100'000'000, "optimiser steps")
        .integer("batch", &C::batch, 1, 1 << 20, "images per step")
        .number("lr", &C::lr, 1e-8, 10, "AdamW peak learning rate (linear warm-up, then cosine decay to 0)")
        .number("weight_decay", &C::weight_decay, 0, 10, "AdamW weight decay")
        .integer("warmup", &C::warmup, 0, 100'000'000, "linear warm-up steps")
        .integer("shift", &C::shift, 0, 64, "random translation by up to this many pixels (0 = off)")
        .flag("flip", &C::flip, "random horizontal flips")
        .include(classifier_option_table(), &C::model, {"width", "feature_dim"})
        .integer("seed", &C::seed, 0, INT64_MAX, "seed of the initialisation, batches and augmentation")
        .integer("checkpoint_every", &C::checkpoint_every, 0, 100'000'000, "steps per checkpoint (0: none)")
        .integer("log_every", &C::log_every, 1, 100'000'000, "steps per metrics row")
        .integer("monitor", &C::monitor, 0, 1'000'000'000,
                 "each metrics row: accuracy on the first N test images (0 = off)");
    return t;
  }();
  return table;
}

EvaluatorConfig read_evaluator_config(ConfigNode root) {
  EvaluatorConfig c;
  c.data = read_data_config(root.table("data"));
  auto e = root.table("evaluator");
  evaluator_option_table().read(e, c);
  c.runtime = read_runtime_options(root.table("runtime"));
  root.finish();
  c.resolved = root.resolved_toml();
  return c;
}

EvaluatorReport train_evaluator(const EvaluatorConfig& cfg_in, const std::filesystem::path& out, bool progress,
                                const std::string& config_text) {
  const auto t0 = std::chrono::steady_clock::now();
  auto cfg = cfg_in;
  const auto device = start_run(out, cfg.runtime, /*data_parallel=*/true);
  auto train = load_dataset(cfg.data, "train");
  auto test = load_dataset(cfg.data, "test");
  check_labelled(train, "train");
  check_labelled(test, "test");
  if (test.images.sizes().slice(1) != train.images.sizes().slice(1))
    throw IoError(fmt::format("data: test images are {} but training images are {}",
                              c10::str(test.images.sizes().slice(1)), c10::str(train.images.sizes().slice(1))));
  if (train.images.size(2) != train.images.size(3))
    throw IoError(fmt::format("data: images must be square; got {}", c10::str(train.images.sizes().slice(1))));
  cfg.model.channels = train.images.size(1);
  cfg.model.resolution = train.images.size(2);
  cfg.model.num_classes = std::max(train.num_classes, test.num_classes);

  // Module initialisers draw from LibTorch's global generator; everything else from `rng`.
  torch::manual_seed(cfg.seed);
  Rng rng(cfg.seed);
  Classifier model(cfg.model);
  model->to(device);
  auto opt = make_adamw(model->parameters(), OptimOptions{cfg.lr, 0.9, 0.999, cfg.weight_decay});
  RunSeconds seconds;
  CheckpointParts parts{{{"classifier", model.ptr().get()}}, {{"adamw", &opt}}, {{"seconds", &seconds.seconds}}};
  const auto ckpt = out / "checkpoint.pt";
  int64_t step = 0;
  if (std::filesystem::exists(ckpt)) step = load_checkpoint(ckpt, parts, rng, config_text);
  // Data parallelism (dist/world.h): [evaluator] batch is the global batch. Every rank draws all of
  // it (indices and augmentation) from the one seeded stream and trains on its slice; the batch
  // norms use the global batch's statistics, so N ranks compute what one process does.
  const World& w = world();
  const auto [b0, b1] = rank_slice(cfg.batch, "evaluator.batch");
  broadcast_from_rank0(model->parameters());
  broadcast_from_rank0(model->buffers());
  seconds.resume(t0);
  write_resolved_config(out, config_text);  // after the check: a refused run changes nothing

  auto train_x = train.images.to(device), train_y = train.labels.to(device);
  const int64_t monitor_n = std::min(cfg.monitor, test.images.size(0));
  auto monitor_x = test.images.narrow(0, 0, monitor_n), monitor_y = test.labels.narrow(0, 0, monitor_n);

  std::optional<MetricsLog> log;
  if (w.writes()) log.emplace(out, step);
  ProgressBar bar("evaluator", cfg.steps, step, progress && w.writes());
  const auto params = model->parameters();
  double loss_sum = 0, acc_sum = 0;
  int64_t window = 0;
  model->train();
  while (step < cfg.steps) {
    double lr = learning_rate(cfg, step);
    set_lr(opt, lr);
    auto idx = rng.randint(0, train_x.size(0), {cfg.batch}).to(device);
    auto x = augment(train_x.index_select(0, idx), cfg, rng).slice(0, b0, b1);
    auto y = train_y.index_select(0, idx).slice(0, b0, b1);
    auto logits = model->forward(x);
    auto loss = torch::nn::functional::cross_entropy(logits, y);
    opt.zero_grad();
    loss.backward();
    // The mean over the ranks. The evaluator stops at the first non-finite step: it is trained once.
    if (!std::isfinite(finalize_gradients(params, /*clip=*/0)))
      throw NonFiniteError(fmt::format("evaluator step {}: non-finite gradient", step));
    opt.step();
    double l = loss.item<double>();
    if (!std::isfinite(l)) throw NonFiniteError(fmt::format("evaluator step {}: non-finite loss", step));
    loss_sum += l;
    acc_sum += logits.argmax(1).eq(y).to(torch::kFloat64).mean().item<double>();
    ++window;
    ++step;
    if (step % cfg.log_every == 0 || step == cfg.steps) {
      const double mean_loss = mean_over_ranks(loss_sum / window), mean_acc = mean_over_ranks(acc_sum / window);
      if (log) {
        std::map<std::string, double> row{{"loss", mean_loss}, {"train_acc", mean_acc}, {"lr", lr}};
        if (monitor_n > 0) row["monitor_acc"] = accuracy(model, monitor_x, monitor_y, device);
        log->write(step, row);
      }
      bar.update(step, fmt::format("loss {:.3f}", mean_loss));
      loss_sum = acc_sum = 0;
      window = 0;
    } else {
      bar.update(step);
    }
    if (cfg.checkpoint_every > 0 && (step % cfg.checkpoint_every == 0 || step == cfg.steps) && w.writes()) {
      seconds.seconds = seconds.now();
      save_checkpoint(ckpt, parts, step, rng, config_text);
    }
  }
  bar.finish();

  EvaluatorReport report;
  report.steps = step;
  if (!w.writes()) return report;  // rank 0 scores and writes
  report.test_accuracy = accuracy(model, test.images, test.labels, device);
  report.steps = step;
  report.train_size = train.images.size(0);
  report.test_size = test.images.size(0);
  model->eval();
  save_classifier(out / "evaluator.safetensors", model);
  plot_metrics_csv(out / "metrics.csv", out / "loss.png", {"loss"}, "evaluator training loss", true);
  std::vector<std::string> acc_cols{"train_acc"};
  if (monitor_n > 0) acc_cols.push_back("monitor_acc");
  plot_metrics_csv(out / "metrics.csv", out / "accuracy.png", acc_cols, "evaluator accuracy", false);
  report.seconds = seconds.now();
  nlohmann::json j{{"test_accuracy", report.test_accuracy}, {"steps", report.steps},
                   {"seconds", report.seconds},             {"train_size", report.train_size},
                   {"test_size", report.test_size}};
  write_text_atomic(out / "evaluator.json", j.dump(2) + "\n");
  return report;
}

}  // namespace retort
