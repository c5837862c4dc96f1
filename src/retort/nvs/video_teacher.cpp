#include "retort/nvs/video_teacher.h"

#include <fmt/format.h>

#include <chrono>

#include "retort/dist/world.h"
#include "retort/core/error.h"
#include "retort/core/runtime_config.h"
#include "retort/io/png.h"
#include "retort/run/run_folder.h"

namespace retort {

const OptionTable<NvsData>& nvs_data_option_table() {
  static const auto t = OptionTable<NvsData>()
      .text("train", &NvsData::train, "training clips (render-scenes' train.safetensors)")
      .text("preview", &NvsData::preview, "clips shown in samples.png (e.g. test.safetensors; empty: the first training clips)");
  return t;
}

namespace {

using C = NvsTeacherConfig;

const OptionTable<C>& data_table() {
  static const auto t = OptionTable<C>().include(nvs_data_option_table(), &C::data);
  return t;
}

const OptionTable<C>& model_table() {
  static const auto t = OptionTable<C>()
      .flag("mask", &C::mask, "append the point-cloud render's coverage mask as a condition channel")
      .include(teacher_prediction_option_table(), &C::model)
      .include(unet_option_table(), [](C& c) -> UNetOptions& { return c.model.net; },
               {"widths", "blocks", "time_dim", "groups", "heads", "dropout", "temporal_heads", "temporal_from"});
  return t;
}

const OptionTable<C>& schedule_table() {
  static const auto t = OptionTable<C>().include(
      schedule_option_table(), [](C& c) -> ScheduleOptions& { return c.model.schedule; }, {"kind", "steps"});
  return t;
}

const OptionTable<C>& train_table() {
  static const auto t = OptionTable<C>().include(denoiser_train_option_table(), &C::train);
  return t;
}

const OptionTable<C>& preview_table() {
  static const auto t = OptionTable<C>()
      .integer("steps", [](C& c) -> int64_t& { return c.preview.steps; }, 1, 10000, "DDIM steps of the preview")
      .number("cfg", [](C& c) -> double& { return c.preview.cfg; }, 0, 100, "guidance scale of the preview (1 = none)")
      .integer("clips", &C::preview_clips, 1, 64, "clips shown");
  return t;
}

}  // namespace

NvsTeacherConfig read_nvs_teacher_config(ConfigNode root) {
  NvsTeacherConfig c;
  auto d = root.table("data");
  data_table().read(d, c);
  auto m = root.table("model");
  model_table().read(m, c);
  auto s = root.table("schedule");
  schedule_table().read(s, c);
  auto t = root.table("train");
  train_table().read(t, c);
  auto p = root.table("preview");
  preview_table().read(p, c);
  c.runtime = read_runtime_options(root.table("runtime"));
  root.finish();
  return c;
}

std::string nvs_teacher_config_markdown() {
  std::string out;
  const NvsTeacherConfig defaults;
  for (auto [name, table] : {std::pair{"data", &data_table()}, {"model", &model_table()}, {"schedule", &schedule_table()},
                             {"train", &train_table()}, {"preview", &preview_table()}})
    out += fmt::format("`[{}]`\n\n{}\n", name, table->markdown(defaults));
  return out;
}

torch::Tensor nvs_concat(const torch::Tensor& renders, const torch::Tensor& masks, bool mask) {
  if (!mask) return renders;
  auto m = masks.dim() == renders.dim() ? masks : masks.unsqueeze(-3);
  return torch::cat({renders, m.to(renders.dtype())}, -3);
}

torch::Tensor nvs_condition(const SceneDataset& data, const torch::Tensor& idx, bool mask) {
  auto i = idx.to(data.renders.device());
  return nvs_concat(data.renders.index_select(0, i), data.masks.index_select(0, i), mask);
}

void write_clip_rows(const std::filesystem::path& png, const std::vector<torch::Tensor>& clips) {
  if (clips.empty()) throw Error("write_clip_rows: no clips");
  const int64_t N = clips[0].size(0), K = clips[0].size(1);
  std::vector<torch::Tensor> rows;
  for (int64_t i = 0; i < N; ++i)
    for (const auto& c : clips) {
      auto x = c.select(0, i).to(torch::kCPU, torch::kFloat32);
      if (x.size(1) == 1) x = x.expand({K, 3, x.size(2), x.size(3)});
      rows.push_back(x.slice(1, 0, 3));
    }
  write_png_grid(png, torch::cat(rows), K);
}

DenoiserReport train_nvs_teacher(const NvsTeacherConfig& cfg_in, const std::filesystem::path& out, bool progress,
                                 const std::string& config_text, int64_t stop_after) {
  NvsTeacherConfig cfg = cfg_in;
  auto device = start_run(out, cfg.runtime, true);
  auto data = load_scene_dataset(cfg.data.train);
  const int64_t N = data.frames.size(0);
  if (N == 0) throw Error(cfg.data.train + ": no clips");
  auto& net = cfg.model.net;
  net.channels = 3;
  net.resolution = data.resolution;
  net.frames = data.frames_per_clip;
  net.num_classes = 0;
  net.concat_channels = cfg.mask ? 4 : 3;

  auto pair = make_teacher_pair(cfg.model, cfg.train.seed, device);
  UNetDenoiser& model = pair.model;
  UNetDenoiser& ema = pair.ema;
  Rng rng(cfg.train.seed);
  auto frames = data.frames.to(device);
  auto condition = nvs_condition(data, torch::arange(N), cfg.mask).to(device);
  auto next_batch = [&](Rng& r, int64_t batch, const torch::Device& dev) {
    auto idx = r.randint(0, N, {batch}, dev);
    DenoiserBatch b{frames.index_select(0, idx), {}};
    b.cond.concat = condition.index_select(0, idx);
    return b;
  };
  auto report = train_denoiser(cfg.train, model, ema, next_batch, rng, device, out, progress, config_text, stop_after,
                               "nvs-teacher");
  if (!report.finished || !world().writes()) return report;
  auto t0 = std::chrono::steady_clock::now();
  save_unet(out / "nvs-teacher.safetensors", ema);
  const SceneDataset preview = cfg.data.preview.empty() ? std::move(data) : load_scene_dataset(cfg.data.preview);
  if (preview.frames_per_clip != net.frames || preview.resolution != net.resolution)
    throw ConfigError(fmt::format("data.preview: {} has {} frames at {} px, the teacher {} at {} px", cfg.data.preview,
                                  preview.frames_per_clip, preview.resolution, net.frames, net.resolution));
  const int64_t n = std::min<int64_t>(cfg.preview_clips, preview.frames.size(0));
  auto idx = torch::arange(n);
  Cond cond;
  cond.concat = nvs_condition(preview, idx, cfg.mask);
  Rng preview_rng(cfg.train.seed + 1);
  TeacherSampling sampling = cfg.preview;
  if (cfg.train.regressor) sampling.steps = 1;  // a regressor's one evaluation (denoiser_train.h)
  auto clips = sample_teacher(*ema, cond, n, sampling, preview_rng);
  write_clip_rows(out / "samples.png", {preview.renders.narrow(0, 0, n), clips, preview.frames.narrow(0, 0, n)});
  report.seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return report;
}

}  // namespace retort
