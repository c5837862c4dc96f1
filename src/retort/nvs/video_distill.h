// `retort distill-nvs`: FVGen's few-step student of the video teacher (and its baselines), trained
// by the shared student trainer (train/student_distill.h) on render-scenes clips: the student's
// draws are conditioned on the point-cloud renders of random training clips; the real samples of
// the GAN stage and the discriminators are ground-truth clips with their own renders.
#pragma once
#include <filesystem>
#include <string>

#include "retort/core/config.h"
#include "retort/nvs/video_teacher.h"
#include "retort/train/student_distill.h"

namespace retort {

struct NvsDistillConfig : StudentConfig {
  NvsData data;
  int64_t preview_clips = 4;
  NvsDistillConfig() {
    teacher = "weights/nvs-teacher.safetensors";
    loop.batch = 4;  // clips (x K frames) per update
  }
};

// Reads the top-level `teacher`, [data], [distill], [preview], [runtime]; unknown keys are refused.
NvsDistillConfig read_nvs_distill_config(ConfigNode root);
// The key tables, for `retort config distill-nvs`.
std::string nvs_distill_config_markdown();

// distill_student on the clips of cfg.data.train; writes samples.png (per preview clip: the point-
// cloud renders, the student's clip, the ground truth). ConfigError when the teacher is not a video
// teacher of those clips (frames, resolution, condition channels).
FewStepStudent distill_nvs(const NvsDistillConfig& cfg, const std::filesystem::path& out, bool progress,
                           const std::string& config_text, double* train_seconds = nullptr);

}  // namespace retort
