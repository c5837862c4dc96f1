// Samplers are free functions over a denoise callback, kept apart from schedules and models
// (the split of stable-diffusion.cpp's denoiser.hpp).
#pragma once
#include <functional>
#include <vector>

#include <torch/torch.h>

#include "retort/core/rng.h"
#include "retort/diffusion/schedule.h"

namespace retort {

// eps prediction at (x_t, t) with t a [B] tensor.
using EpsFn = std::function<torch::Tensor(const torch::Tensor& xt, const torch::Tensor& t)>;

// `steps` times from t = 1 down, evenly spaced ("trailing"), snapped to the schedule's grid.
std::vector<double> sampling_times(const Schedule& schedule, int64_t steps);

struct SamplerOptions {
  double eta = 0.0;          // 0: DDIM (deterministic); 1: DDPM ancestral
  double clip_x0 = 0.0;      // > 0: clamp the predicted x0 to [-clip, clip] (images in [-1, 1])
};

// DDIM with stochasticity eta (Song et al. 2021): from x at times[0] through each time to t = 0.
torch::Tensor ddim_sample(const Schedule& schedule, const EpsFn& eps_fn, torch::Tensor x,
                          const std::vector<double>& times, const SamplerOptions& opts, Rng& rng);
// DDPM ancestral sampling over the given times (eta = 1).
torch::Tensor ddpm_sample(const Schedule& schedule, const EpsFn& eps_fn, torch::Tensor x,
                          const std::vector<double>& times, Rng& rng);

}  // namespace retort
