// A trained novel-view model as `retort nvs` and `bench-nvs` use it: the video teacher (sampled
// with DDIM/DDPM at a chosen step count) or a few-step student of it (its own steps).
#pragma once
#include <filesystem>
#include <string>

#include "retort/generators/few_step_student.h"
#include "retort/generators/image_sampling.h"

namespace retort {

struct VideoModel {
  DiffusionModelPtr net;  // the teacher, or the student's network
  FewStepStudent student{nullptr};  // empty for a teacher
  bool reads_mask() const { return net->shape().concat_channels == 4; }
  int64_t frames() const { return net->shape().frames; }
  int64_t resolution() const { return net->shape().resolution; }
  // "4-step student" or "teacher, ddim 50 steps, cfg 1".
  std::string describe(const TeacherSampling& s) const;
  // Network evaluations per clip: the student's steps, or the teacher's (doubled with guidance).
  int64_t evaluations(const TeacherSampling& s) const;
};

// ConfigError naming the file when it holds no video model with render channels.
VideoModel load_video_model(const std::filesystem::path& file);

// Clips [n,K,3,R,R] in [-1,1] (on the model's device) for condition channels `concat` [n,K,C,R,R]
// (nvs_concat): a student with its own steps, a teacher with `s`.
torch::Tensor generate_clips(VideoModel& m, const torch::Tensor& concat, const TeacherSampling& s, Rng& rng);

}  // namespace retort
