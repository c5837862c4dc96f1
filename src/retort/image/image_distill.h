// `retort distill`: a few-step image student from a UNet teacher, trained by the shared student
// trainer (train/student_distill.h) on the image data set: real images for the discriminators,
// random classes for the student's draws, DMD's regression pairs, a grid of samples.
#pragma once
#include <filesystem>
#include <string>

#include "retort/core/config.h"
#include "retort/image/dataset_config.h"
#include "retort/train/student_distill.h"

namespace retort {

// The student's keys plus the real images (GAN stages, discriminators).
struct ImageDistillConfig : StudentConfig {
  DataConfig data;
};

// Reads the [distill] table and the top-level `teacher`, [data], [runtime].
ImageDistillConfig read_image_distill_config(ConfigNode& root);
// The same keys from a bench run table, on top of `base`.
ImageDistillConfig read_image_distill_run(ConfigNode& n, const ImageDistillConfig& base);

// distill_student on the image data set; writes samples.png (10 per class).
FewStepStudent distill_images(const ImageDistillConfig& cfg, const std::filesystem::path& out, bool progress,
                              const std::string& config_text, double* train_seconds = nullptr);

}  // namespace retort
