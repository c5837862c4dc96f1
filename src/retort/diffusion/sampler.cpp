#include "retort/diffusion/sampler.h"

#include "retort/core/error.h"
#include "retort/diffusion/parameterization.h"

namespace retort {

std::vector<double> sampling_times(const Schedule& schedule, int64_t steps) {
  if (steps < 1) throw ConfigError("sampling steps must be at least 1");
  std::vector<double> times;
  for (int64_t i = 0; i < steps; ++i) {
    double t = 1.0 - double(i) / double(steps);
    times.push_back(schedule.snap(torch::tensor({t}, torch::kFloat64)).item<double>());
  }
  return times;
}

torch::Tensor ddim_sample(const Schedule& schedule, const EpsFn& eps_fn, torch::Tensor x,
                          const std::vector<double>& times, const SamplerOptions& opts, Rng& rng) {
  torch::NoGradGuard no_grad;
  const int64_t B = x.size(0);
  auto opt = torch::TensorOptions().dtype(x.scalar_type()).device(x.device());
  for (size_t i = 0; i < times.size(); ++i) {
    auto t = torch::full({B}, times[i], opt);
    auto abar_t = schedule.alpha_bar(t);
    auto alpha_t = abar_t.sqrt(), sigma_t = (1 - abar_t).sqrt();
    auto eps = eps_fn(x, t);
    auto x0 = x0_from_eps(x, eps, alpha_t, sigma_t);
    if (opts.clip_x0 > 0) {
      x0 = x0.clamp(-opts.clip_x0, opts.clip_x0);
      eps = eps_from_x0(x, x0, alpha_t, sigma_t);
    }
    if (i + 1 == times.size()) return x0;  // last step lands on t = 0
    auto s = torch::full({B}, times[i + 1], opt);
    auto abar_s = schedule.alpha_bar(s);
    // sigma_eta^2 = eta^2 (1 - abar_s)/(1 - abar_t) (1 - abar_t/abar_s)
    auto var = (opts.eta * opts.eta) * (1 - abar_s) / (1 - abar_t) * (1 - abar_t / abar_s);
    var = var.clamp_min(0);
    auto dir = (1 - abar_s - var).clamp_min(0).sqrt();
    x = per_sample(abar_s.sqrt(), x) * x0 + per_sample(dir, x) * eps;
    if (opts.eta > 0) x = x + per_sample(var.sqrt(), x) * rng.randn(x.sizes(), x.device());
  }
  return x;
}

torch::Tensor ddpm_sample(const Schedule& schedule, const EpsFn& eps_fn, torch::Tensor x,
                          const std::vector<double>& times, Rng& rng) {
  return ddim_sample(schedule, eps_fn, std::move(x), times, SamplerOptions{1.0, 0.0}, rng);
}

}  // namespace retort
