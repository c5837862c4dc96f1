// `retort train-teacher`: a class-conditional UNet diffusion model trained on an image data set
// with the denoising loss, classifier-free-guidance label dropout and an EMA of the weights.
// Checkpoints carry the config, step, optimiser, EMA and RNG state; a killed run resumes to the
// same weights an uninterrupted run reaches.
#pragma once
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "retort/core/config.h"
#include "retort/core/runtime.h"
#include "retort/image/dataset_config.h"
#include "retort/generators/image_sampling.h"
#include "retort/models/unet.h"
#include "retort/train/denoiser_train.h"

namespace retort {

struct TeacherConfig {
  DataConfig data;
  TeacherModel model;  // net: channels, resolution and num_classes come from the data set
  bool conditional = true;                // false: ignore labels (unconditional model)
  DenoiserTrainOptions train;
  TeacherSampling preview{50, 2.0, 0.0, 1.0, 250};  // the samples.png written at the end
  int64_t preview_classes = 0;    // rows of samples.png: 0 = every class, else that many spread evenly
  int64_t preview_per_class = 10;  // columns of samples.png
  RuntimeOptions runtime;
};

// The teacher's option tables, one per TOML table: [model], [schedule], [train], [preview].
const std::vector<std::pair<std::string, const OptionTable<TeacherConfig>*>>& teacher_option_tables();
// Reads [data], the tables above and [runtime]; unknown keys are ConfigErrors (root.finish()).
TeacherConfig read_teacher_config(ConfigNode root);

// Trains into `out`: checkpoint.pt, metrics.csv/jsonl, loss.png, teacher.safetensors (EMA
// weights), samples.png (a class-per-row grid), config.resolved.toml. `stop_after` > 0 ends this
// invocation (with a checkpoint) after that many steps, for time-boxed jobs; a rerun continues.
// The final files are written only once cfg.steps are done.
DenoiserReport train_teacher(const TeacherConfig& cfg, const std::filesystem::path& out, bool progress,
                            const std::string& config_text, int64_t stop_after = 0);

}  // namespace retort
