// `retort train-nvs-teacher`: the video diffusion teacher of novel-view synthesis (ViewCrafter's
// role in FVGen). A UNet over clips [K,3,R,R] with temporal attention, conditioned by channel
// concatenation on the point-cloud renders of the trajectory (frame 0 is the input view itself)
// and, optionally, their coverage mask; v-prediction on a cosine schedule; condition dropout for
// classifier-free guidance. Trained by the shared denoiser loop (EMA, resume, metrics).
#pragma once
#include <filesystem>
#include <string>

#include "retort/core/config.h"
#include "retort/core/runtime.h"
#include "retort/generators/image_sampling.h"
#include "retort/nvs/scene_dataset.h"
#include "retort/train/denoiser_train.h"

namespace retort {

// The [data] of the video teacher and its students: clips from render-scenes.
struct NvsData {
  std::string train = "runs/scenes/train.safetensors";
  std::string preview;  // clips shown in samples.png; empty: the first training clips
};
const OptionTable<NvsData>& nvs_data_option_table();

struct NvsTeacherConfig {
  NvsData data;
  bool mask = true;             // the coverage mask as a 4th condition channel
  TeacherModel model = [] {
    TeacherModel m;
    m.net.channels = 3;
    m.net.num_classes = 0;
    m.net.temporal_heads = 2;
    return m;
  }();
  DenoiserTrainOptions train = [] {
    DenoiserTrainOptions t;
    t.steps = 8000;
    t.batch = 8;
    t.warmup = 200;
    t.checkpoint_every = 200;
    return t;
  }();
  TeacherSampling preview{50, 1.0, 0.0, 1.0, 16};
  int64_t preview_clips = 4;
  RuntimeOptions runtime;
};

// Reads [data], [model], [schedule], [train], [preview], [runtime]; unknown keys are refused.
NvsTeacherConfig read_nvs_teacher_config(ConfigNode root);
// The key tables, for `retort config train-nvs-teacher`.
std::string nvs_teacher_config_markdown();

// The condition channels a video model reads: point-cloud renders [...,K,3,R,R] in [-1,1], with
// their coverage mask ([...,K,1,R,R] or [...,K,R,R]) appended as a 4th channel when `mask`.
torch::Tensor nvs_concat(const torch::Tensor& renders, const torch::Tensor& masks, bool mask);
// The same for clips `idx` of `data`: [B,K,3 or 4,R,R].
torch::Tensor nvs_condition(const SceneDataset& data, const torch::Tensor& idx, bool mask);

// Trains into `out` (see train_denoiser); once finished writes nvs-teacher.safetensors (EMA weights)
// and samples.png (per preview clip: point-cloud renders, the teacher's clip, the ground truth).
DenoiserReport train_nvs_teacher(const NvsTeacherConfig& cfg, const std::filesystem::path& out, bool progress,
                                 const std::string& config_text, int64_t stop_after = 0);

// Rows of `clips` (each [N,K,C,R,R] in [-1,1], same N and K), clip by clip: one PNG grid, K columns.
void write_clip_rows(const std::filesystem::path& png, const std::vector<torch::Tensor>& clips);

}  // namespace retort
