// Which diffusion times a distillation step draws: a range [min, max] whose upper bound can be
// annealed (ProlificDreamer / ASD anneal 0.98 -> 0.5 after 20% of training), and the weight w(t)
// that multiplies each sample's gradient.
#pragma once
#include <string>
#include <utility>
#include <vector>

#include <torch/torch.h>

#include "retort/core/rng.h"
#include "retort/diffusion/schedule.h"

namespace retort {

enum class Anneal { None, Step, Linear };

struct TimeRange {
  double min = 0.02;
  double max = 0.98;
  Anneal anneal = Anneal::None;
  double anneal_to = 0.5;     // the upper bound after annealing
  double anneal_at = 0.2;     // Step: fraction of training at which max drops to anneal_to;
                              // Linear: max goes linearly from `max` to `anneal_to` over training

  std::pair<double, double> bounds(int64_t step, int64_t total) const;
  // B times, uniform in the current bounds, snapped to the schedule's grid.
  torch::Tensor sample(int64_t batch, int64_t step, int64_t total, const Schedule& schedule, Rng& rng,
                       const torch::Device& device) const;
};
Anneal parse_anneal(const std::string& name);

enum class Weighting { Uniform, Sigma2, AlphaSigma };
Weighting parse_weighting(const std::string& name);
std::vector<std::string> weighting_names();
// w(t) per sample: uniform 1; sigma2 = 1 - alpha_bar (DreamFusion, ASD); alpha_sigma = alpha sigma.
torch::Tensor time_weight(Weighting w, const torch::Tensor& alpha, const torch::Tensor& sigma);

}  // namespace retort
