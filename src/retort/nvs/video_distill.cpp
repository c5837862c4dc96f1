#include "retort/nvs/video_distill.h"

#include <fmt/format.h>

#include <memory>

#include "retort/core/error.h"
#include "retort/core/runtime_config.h"
#include "retort/nvs/scene_dataset.h"

namespace retort {
namespace fs = std::filesystem;

namespace {

const OptionTable<NvsDistillConfig>& student_data_table() {
  static const auto t = OptionTable<NvsDistillConfig>().include(nvs_data_option_table(), &NvsDistillConfig::data);
  return t;
}

const OptionTable<NvsDistillConfig>& student_preview_table() {
  static const auto t = OptionTable<NvsDistillConfig>().integer("clips", &NvsDistillConfig::preview_clips, 1, 64, "clips shown in samples.png");
  return t;
}

// The condition channels the teacher reads: 4 = renders + coverage mask, 3 = renders.
bool teacher_reads_mask(const ModelShape& o, const NvsDistillConfig& cfg, const SceneDataset& d) {
  if (o.frames < 1 || (o.concat_channels != 3 && o.concat_channels != 4))
    throw ConfigError(fmt::format("teacher: {} is not a novel-view video teacher (frames {}, {} condition channels; "
                                  "train one with train-nvs-teacher)",
                                  cfg.teacher.string(), o.frames, o.concat_channels));
  if (o.frames != d.frames_per_clip || o.resolution != d.resolution)
    throw ConfigError(fmt::format("data.train: {} has {} frames at {} px; the teacher {} takes {} frames at {} px",
                                  cfg.data.train, d.frames_per_clip, d.resolution, cfg.teacher.string(), o.frames,
                                  o.resolution));
  return o.concat_channels == 4;
}

}  // namespace

NvsDistillConfig read_nvs_distill_config(ConfigNode root) {
  NvsDistillConfig c;
  read_student_top(root, c);
  auto d = root.table("data");
  student_data_table().read(d, c);
  auto s = root.table("distill");
  read_student_keys(s, c, false);  // no regression pairs are made for clips
  auto p = root.table("preview");
  student_preview_table().read(p, c);
  c.runtime = read_runtime_options(root.table("runtime"));
  root.finish();
  return c;
}

std::string nvs_distill_config_markdown() {
  const NvsDistillConfig defaults;
  return fmt::format("Top level\n\n{}\n`[data]`\n\n{}\n`[distill]`\n\n{}\nPresets of `[distill] method`\n\n{}\n"
                     "`[preview]`\n\n{}\n",
                     student_top_option_table().markdown(defaults), student_data_table().markdown(defaults),
                     student_option_table(false).markdown(defaults), method_presets_markdown(defaults),
                     student_preview_table().markdown(defaults));
}

FewStepStudent distill_nvs(const NvsDistillConfig& cfg, const fs::path& out, bool progress,
                           const std::string& config_text, double* train_seconds) {
  // Read before training starts: a wrong teacher or data file is refused before anything is written.
  auto clips = std::make_shared<SceneDataset>(load_scene_dataset(cfg.data.train));
  const int64_t N = clips->frames.size(0);
  if (N == 0) throw ConfigError("data.train: " + cfg.data.train + " holds no clips");
  auto mask = std::make_shared<bool>(false);  // set by check_teacher, read by the samplers

  StudentData data;
  data.check_teacher = [&cfg, clips, mask](const DiffusionModel& teacher) {
    *mask = teacher_reads_mask(teacher.shape(), cfg, *clips);
  };
  data.conditions = [clips, N, mask](int64_t n, Rng& rng, const torch::Device& device) {
    return Cond::concatenated(nvs_condition(*clips, rng.randint(0, N, {n}, torch::kCPU), *mask).to(device));
  };
  data.real = [clips, N, mask](const DiffusionModel&, const torch::Device& device) -> RealSampler {
    return [clips, N, mask, device](int64_t n, Rng& rng) {
      auto idx = rng.randint(0, N, {n}, torch::kCPU);
      return GenBatch{clips->frames.index_select(0, idx).to(device),
                      Cond::concatenated(nvs_condition(*clips, idx, *mask).to(device))};
    };
  };
  data.preview = [&cfg, clips, mask](FewStepStudent& student, const fs::path& dir) {
    const SceneDataset preview = cfg.data.preview.empty() ? *clips : load_scene_dataset(cfg.data.preview);
    if (preview.frames_per_clip != clips->frames_per_clip || preview.resolution != clips->resolution)
      throw ConfigError(fmt::format("data.preview: {} has {} frames at {} px, data.train {} at {} px", cfg.data.preview,
                                    preview.frames_per_clip, preview.resolution, clips->frames_per_clip,
                                    clips->resolution));
    const int64_t n = std::min<int64_t>(cfg.preview_clips, preview.frames.size(0));
    const auto device = student->net->device();
    auto cond = Cond::concatenated(nvs_condition(preview, torch::arange(n), *mask).to(device));
    Rng rng(cfg.seed + 1);
    auto made = student->sample(cond, n, rng);
    write_clip_rows(dir / "samples.png", {preview.renders.narrow(0, 0, n), made, preview.frames.narrow(0, 0, n)});
  };
  return distill_student(cfg, data, out, progress, config_text, train_seconds);
}

}  // namespace retort
