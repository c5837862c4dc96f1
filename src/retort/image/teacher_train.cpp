#include "retort/image/teacher_train.h"

#include <fmt/format.h>

#include <chrono>

#include "retort/dist/world.h"
#include "retort/core/error.h"
#include "retort/core/runtime_config.h"
#include "retort/io/png.h"
#include "retort/run/run_folder.h"

namespace retort {

const std::vector<std::pair<std::string, const OptionTable<TeacherConfig>*>>& teacher_option_tables() {
  using C = TeacherConfig;
  static const auto model = [] {
    OptionTable<C> t;
    t.flag("conditional", &C::conditional, "class-conditional (false: labels ignored, an unconditional model)")
        .include(unet_option_table(), [](C& c) -> UNetOptions& { return c.model.net; },
                 {"widths", "blocks", "time_dim", "groups", "heads", "dropout"})
        .include(teacher_prediction_option_table(), &C::model);
    return t;
  }();
  static const auto schedule = [] {
    OptionTable<C> t;
    t.include(schedule_option_table(), [](C& c) -> ScheduleOptions& { return c.model.schedule; }, {"kind", "steps"});
    return t;
  }();
  static const auto train = [] {
    OptionTable<C> t;
    t.include(denoiser_train_option_table(), &C::train);
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

DenoiserReport train_teacher(const TeacherConfig& cfg_in, const std::filesystem::path& out, bool progress,
                             const std::string& config_text, int64_t stop_after) {
  TeacherConfig cfg = cfg_in;
  auto device = start_run(out, cfg.runtime, true);
  auto data = load_dataset(cfg.data, "train");
  const int64_t N = data.images.size(0);
  if (N == 0) throw Error("the training set is empty");
  if (data.images.size(2) != data.images.size(3))
    throw Error(fmt::format("images must be square, got {}x{}", data.images.size(2), data.images.size(3)));
  auto& net = cfg.model.net;
  net.channels = data.images.size(1);
  net.resolution = data.images.size(2);
  net.num_classes = cfg.conditional ? data.num_classes : 0;
  if (cfg.conditional && data.num_classes == 0)
    throw ConfigError("model.conditional = true but the data set has no labels; set it to false");

  auto pair = make_teacher_pair(cfg.model, cfg.train.seed, device);
  UNetDenoiser& model = pair.model;
  UNetDenoiser& ema = pair.ema;
  Rng rng(cfg.train.seed);
  auto images = data.images.to(device);
  auto labels = data.labels.defined() ? data.labels.to(device) : torch::Tensor();
  const bool conditional = net.num_classes > 0;
  auto next_batch = [&](Rng& r, int64_t batch, const torch::Device& dev) {
    auto idx = r.randint(0, N, {batch}, dev);
    DenoiserBatch b{images.index_select(0, idx), {}};
    if (conditional) b.cond = Cond::classes(labels.index_select(0, idx));
    return b;
  };
  auto report = train_denoiser(cfg.train, model, ema, next_batch, rng, device, out, progress, config_text, stop_after,
                               "teacher");
  if (!report.finished || !world().writes()) return report;  // stopped early: rerun to continue; rank 0 writes
  auto t0 = std::chrono::steady_clock::now();
  save_unet(out / "teacher.safetensors", ema);
  Rng preview_rng(cfg.train.seed + 1);
  auto preview_labels = grid_labels(net.num_classes, cfg.preview_per_class);
  const int64_t C = net.num_classes;
  if (cfg.preview_classes > 0 && cfg.preview_classes < C) {  // rows of classes spread over 0..C-1
    auto rows = torch::div(torch::arange(cfg.preview_classes, torch::kInt64) * C, cfg.preview_classes, "floor");
    preview_labels = rows.repeat_interleave(cfg.preview_per_class);
  }
  auto grid = sample_teacher(*ema, preview_labels, cfg.preview, preview_rng);
  write_png_grid(out / "samples.png", grid, cfg.preview_per_class);
  report.seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return report;
}

}  // namespace retort
