#include "retort/nvs/video_model.h"

#include <fmt/format.h>

#include "retort/core/error.h"

namespace retort {

std::string VideoModel::describe(const TeacherSampling& s) const {
  if (student) return fmt::format("{}-step student", student->timesteps().size());
  return fmt::format("teacher, {} {} steps, cfg {}", s.eta > 0 ? "ddpm" : "ddim", s.steps, s.cfg);
}

int64_t VideoModel::evaluations(const TeacherSampling& s) const {
  if (student) return int64_t(student->timesteps().size());
  return s.steps * (s.cfg != 1.0 ? 2 : 1);
}

VideoModel load_video_model(const std::filesystem::path& file) {
  VideoModel m;
  std::map<std::string, std::string> meta;
  m.net = load_diffusion_model(file, &meta);
  m.student = as_student(m.net, meta, file);
  const auto o = m.net->shape();
  if (o.frames == 0 || o.concat_channels < 3)
    throw ConfigError(fmt::format("{}: not a novel-view model (it has no frames or no render channels)", file.string()));
  m.net->eval();
  return m;
}

torch::Tensor generate_clips(VideoModel& m, const torch::Tensor& concat, const TeacherSampling& s, Rng& rng) {
  torch::NoGradGuard ng;
  const auto c = Cond::concatenated(concat);
  const int64_t n = concat.size(0);
  return m.student ? m.student->sample(c, n, rng, s.batch) : sample_teacher(*m.net, c, n, s, rng);
}

}  // namespace retort
