#include "retort/diffusion/timesteps.h"

#include <fmt/format.h>
#include <fmt/ranges.h>  // fmt::join ({fmt} 11 moved it here)

#include "retort/core/error.h"

namespace retort {

std::pair<double, double> TimeRange::bounds(int64_t step, int64_t total) const {
  double frac = total > 0 ? double(step) / double(total) : 0.0;
  double hi = max;
  if (anneal == Anneal::Step && frac >= anneal_at) hi = anneal_to;
  if (anneal == Anneal::Linear) hi = max + (anneal_to - max) * std::min(1.0, frac);
  return {min, std::max(min, hi)};
}

torch::Tensor TimeRange::sample(int64_t batch, int64_t step, int64_t total, const Schedule& schedule,
                                Rng& rng, const torch::Device& device) const {
  auto [lo, hi] = bounds(step, total);
  auto t = lo + (hi - lo) * rng.rand({batch});
  return schedule.snap(t).to(device);
}

Anneal parse_anneal(const std::string& name) {
  if (name == "none") return Anneal::None;
  if (name == "step") return Anneal::Step;
  if (name == "linear") return Anneal::Linear;
  throw ConfigError("unknown anneal '" + name + "'; known: none, step, linear");
}

std::vector<std::string> weighting_names() { return {"uniform", "sigma2", "alpha_sigma"}; }

Weighting parse_weighting(const std::string& name) {
  if (name == "uniform") return Weighting::Uniform;
  if (name == "sigma2") return Weighting::Sigma2;
  if (name == "alpha_sigma") return Weighting::AlphaSigma;
  throw ConfigError(
      fmt::format("unknown weighting '{}'; known: {}", name, fmt::join(weighting_names(), ", ")));
}

torch::Tensor time_weight(Weighting w, const torch::Tensor& alpha, const torch::Tensor& sigma) {
  switch (w) {
    case Weighting::Uniform: return torch::ones_like(alpha);
    case Weighting::Sigma2: return sigma * sigma;
    case Weighting::AlphaSigma: return alpha * sigma;
  }
  return torch::ones_like(alpha);
}

}  // namespace retort
