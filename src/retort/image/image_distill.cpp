#include "retort/image/image_distill.h"

#include <fmt/format.h>

#include "retort/core/error.h"
#include "retort/core/runtime_config.h"
#include "retort/dist/world.h"
#include "retort/io/png.h"
#include "retort/generators/image_sampling.h"
#include "retort/io/safetensors.h"

namespace retort {
namespace fs = std::filesystem;

ImageDistillConfig read_image_distill_run(ConfigNode& n, const ImageDistillConfig& base) {
  ImageDistillConfig c = base;
  read_student_keys(n, c);
  return c;
}

ImageDistillConfig read_image_distill_config(ConfigNode& root) {
  ImageDistillConfig base;
  read_student_top(root, base);
  base.data = read_data_config(root.table("data"));
  base.runtime = read_runtime_options(root.table("runtime"));
  auto d = root.table("distill");
  return read_image_distill_run(d, base);
}

namespace {

// Random training images with their labels.
RealSampler image_sampler(const ImageDataset& data, const torch::Device& device, bool conditional) {
  auto images = data.images.to(device);
  auto labels = conditional && data.labels.defined() ? data.labels.to(device) : torch::Tensor();
  const int64_t N = images.size(0);
  return [images, labels, N, device](int64_t n, Rng& rng) {
    auto idx = rng.randint(0, N, {n}, device);
    Cond c = labels.defined() ? Cond::classes(labels.index_select(0, idx))
                              : Cond::classes(torch::full({n}, kNullClass, torch::dtype(torch::kInt64).device(device)));
    return GenBatch{images.index_select(0, idx), c};
  };
}

// The teacher's DDIM samples from fixed noise, made once and kept in `path` (a rerun reuses them
// when they were made with the same settings).
RegressionPairs regression_pairs(DiffusionModel& teacher, const ImageDistillConfig& cfg, const fs::path& path) {
  const auto& R = cfg.regression;
  const std::string made_with = fmt::format("pairs={} teacher_steps={} cfg={} seed={} teacher={}", R.pairs,
                                            R.teacher_steps, cfg.objective.cfg_scale, cfg.seed, cfg.teacher.string());
  if (fs::exists(path)) {
    std::map<std::string, std::string> meta;
    auto t = load_safetensors(path, &meta);
    if (meta["retort.regression"] == made_with && t.count("noise") && t.count("labels") && t.count("images"))
      return {t["noise"], t["labels"], t["images"]};
  }
  const auto o = teacher.shape();
  Rng rng(cfg.seed + 7);  // a stream of its own: the pairs do not depend on the training draws
  auto noise = rng.randn({R.pairs, o.channels, o.resolution, o.resolution}, torch::kCPU);
  auto labels = balanced_labels(o.num_classes, R.pairs);
  TeacherSampling s;
  s.steps = R.teacher_steps;
  s.cfg = cfg.objective.cfg_scale;
  auto images = sample_teacher(teacher, labels, s, rng, noise).cpu();
  if (world().writes())  // every rank makes the same pairs (seeded); rank 0 keeps them
    save_safetensors(path, {{"noise", noise}, {"labels", labels}, {"images", images}},
                     {{"retort.regression", made_with}});
  return {noise, labels, images};
}

}  // namespace

FewStepStudent distill_images(const ImageDistillConfig& cfg, const fs::path& out, bool progress,
                              const std::string& config_text, double* train_seconds) {
  StudentData data;
  data.real = [&cfg](const DiffusionModel& teacher, const torch::Device& device) {
    const auto o = teacher.shape();
    auto images = load_dataset(cfg.data, "train");
    if (images.images.sizes().slice(1) != torch::IntArrayRef{o.channels, o.resolution, o.resolution})
      throw ConfigError(fmt::format("data: images are {}x{}x{} but the teacher ({}) takes {}x{}x{}",
                                    images.images.size(1), images.images.size(2), images.images.size(3),
                                    cfg.teacher.string(), o.channels, o.resolution, o.resolution));
    return image_sampler(images, device, o.num_classes > 0);
  };
  data.regression = [&cfg](DiffusionModel& teacher, const fs::path& path) { return regression_pairs(teacher, cfg, path); };
  data.preview = [&cfg](FewStepStudent& student, const fs::path& dir) {
    Rng rng(cfg.seed + 1);
    auto grid = student->sample(grid_labels(student->net->shape().num_classes, 10), rng);
    write_png_grid(dir / "samples.png", grid, 10);
  };
  return distill_student(cfg, data, out, progress, config_text, train_seconds);
}

}  // namespace retort
