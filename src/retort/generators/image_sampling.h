// Sampling images from a UNet teacher with DDIM / DDPM and classifier-free guidance, in batches.
#pragma once
#include <torch/torch.h>

#include "retort/core/rng.h"
#include "retort/models/diffusion_model.h"

namespace retort {

struct TeacherSampling {
  int64_t steps = 50;    // sampler steps (trailing spacing over the schedule)
  double cfg = 1.0;      // guidance scale; 1 = plain conditional
  double eta = 0.0;      // 0: DDIM, 1: DDPM
  double clip_x0 = 1.0;  // images live in [-1, 1]
  int64_t batch = 250;   // samples per network call
};

// One sample per entry of `labels` (int64 [N]; kNullClass = unconditional). Returns [N,C,R,R] in
// [-1, 1] on the model's device.
// `noise` [N,C,R,R], when given, is the starting x_T (DMD's noise -> image pairs); otherwise it is
// drawn from `rng`.
torch::Tensor sample_teacher(DiffusionModel& model, const torch::Tensor& labels, const TeacherSampling& opts,
                             Rng& rng, const torch::Tensor& noise = {});
// `n` samples under `cond` (its tensors have n rows; a video model gives [n,K,C,R,R]).
torch::Tensor sample_teacher(DiffusionModel& model, const Cond& cond, int64_t n, const TeacherSampling& opts,
                             Rng& rng, const torch::Tensor& noise = {});

// Labels 0..classes-1, each repeated `per_class` times in a row (a class-per-row grid), or
// `per_class` null labels when the model is unconditional (classes == 0).
torch::Tensor grid_labels(int64_t classes, int64_t per_class);
// n labels cycling through the classes (balanced evaluation sets); null labels when classes == 0.
torch::Tensor balanced_labels(int64_t classes, int64_t n);

}  // namespace retort
