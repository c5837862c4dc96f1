// The density ratio a discriminator learns, against the exact one (bench-gmm's [ratio] table).
//
// Softened RKL weights each generated sample by 1/(r + 1), with r = exp(l) from a discriminator
// trained by the logistic loss, whose optimum is l = log p_real,t / p_fake,t. The weight is only as
// good as r. Here p_real is the benchmark's exact mixture and p_fake a generator whose distribution
// is known, N(0, fake_std² I), so both noisy marginals are exact mixtures: a discriminator is trained
// with the loss every discriminator-based objective uses (distill/gan.h) and its r is compared with
// the true ratio at generated samples (where softened RKL reads it) at several t.
#pragma once
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "retort/core/options.h"
#include "retort/diffusion/schedule.h"
#include "retort/models/gaussian_mixture.h"

namespace retort {

struct RatioCheckOptions {
  int64_t steps = 0;  // discriminator updates; 0 = no check
  int64_t batch = 512;
  double lr = 1e-3;
  int64_t hidden = 128, blocks = 2;  // the discriminator MLP, as bench-gmm's runs build it
  double fake_std = 1.0;             // the known generator: N(0, fake_std² I)
  double t_min = 0.02, t_max = 0.98;
  std::vector<double> times = {0.1, 0.3, 0.5, 0.7, 0.9};  // where r is scored
  int64_t samples = 4000;                                   // generated points scored per time
};

const OptionTable<RatioCheckOptions>& ratio_check_option_table();

// Per scored time: the median over generated points of |r̂ − r| / r, of |log r̂ − log r|, and of
// |1/(r̂+1) − 1/(r+1)| (the softened-RKL weight), and the median true log r.
struct RatioAtTime {
  double t = 0, rel_error_r = 0, abs_error_log_r = 0, abs_error_weight = 0, true_log_r = 0;
};

// Trains the discriminator (seeded by `seed`) and scores it; also scores the untrained one first
// when `untrained` is given (a baseline the trained one must beat).
std::vector<RatioAtTime> check_density_ratio(const GaussianMixture& target, const Schedule& schedule,
                                             const RatioCheckOptions& opts, uint64_t seed, const torch::Device& device,
                                             std::vector<RatioAtTime>* untrained = nullptr);

nlohmann::json ratio_json(const std::vector<RatioAtTime>& rows);
std::string ratio_markdown(const std::vector<RatioAtTime>& rows, const std::vector<RatioAtTime>& untrained);

}  // namespace retort
