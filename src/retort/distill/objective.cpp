#include "retort/distill/objective.h"

#include <fmt/format.h>
#include <fmt/ranges.h>  // fmt::join ({fmt} 11 moved it here)

#include "retort/core/error.h"
#include "retort/distill/distribution_matching.h"
#include "retort/distill/gan.h"
#include "retort/distill/score_distillation.h"

namespace retort {

torch::Tensor Objective::noisy(const torch::Tensor& x0, const NoiseDraw& n, torch::Tensor* alpha,
                               torch::Tensor* sigma) const {
  auto abar = schedule_.alpha_bar(n.t);
  auto a = abar.sqrt(), s = (1 - abar).sqrt();
  if (alpha) *alpha = a;
  if (sigma) *sigma = s;
  return per_sample(a, x0) * x0 + per_sample(s, x0) * n.eps;
}

torch::Tensor GradientObjective::generator_loss(const torch::Tensor& x0, const Cond& cond, const NoiseDraw& n,
                                                const Models& m) {
  torch::Tensor grad;
  {
    // No gradient flows through the teacher, fake score or discriminator here: InferenceMode (no
    // autograd graph, no version counters). grad leaves it only through ops that save no tensor.
    c10::InferenceMode frozen;
    grad = generator_grad(x0.detach(), cond, n, m);
  }
  stats_["grad_norm"] = grad.flatten(1).norm(2, 1).mean().item<double>();
  return gradient_surrogate(x0, grad);
}

torch::Tensor gradient_surrogate(const torch::Tensor& x0, const torch::Tensor& grad) {
  return 0.5 * (x0 - (x0 - grad).detach()).pow(2).mean();
}

torch::Tensor denoising_loss(const torch::Tensor& pred, const torch::Tensor& target) {
  return (pred - target).pow(2).mean();
}

std::vector<std::string> objective_names() {
  return {"sds", "vsd", "asd", "dmd", "dmd2", "softened_rkl", "kl", "js", "hellinger", "jeffreys", "gan"};
}

std::unique_ptr<Objective> make_objective(const std::string& name, const ObjectiveOptions& opts,
                                          const Schedule& schedule) {
  if (name == "sds") return std::make_unique<ScoreDistillation>(name, opts, schedule, ScoreDistillation::Sds);
  if (name == "vsd") return std::make_unique<ScoreDistillation>(name, opts, schedule, ScoreDistillation::Vsd);
  if (name == "asd") return std::make_unique<ScoreDistillation>(name, opts, schedule, ScoreDistillation::Asd);
  if (name == "gan") return std::make_unique<GanObjective>(name, opts, schedule);
  if (name == "dmd2") {
    if (opts.gan_weight <= 0)
      throw ConfigError("dmd2 is DMD plus a GAN term: set gan_weight > 0 (DMD2 uses 3e-3 to 1e-2)");
    return std::make_unique<DistributionMatching>(name, opts, schedule, FDivergence::ReverseKL);
  }
  for (const auto& f : fdivergence_names())
    if (name == f) return std::make_unique<DistributionMatching>(name, opts, schedule, parse_fdivergence(name));
  throw ConfigError(fmt::format("unknown method '{}'; known: {}", name, fmt::join(objective_names(), ", ")));
}

ObjectiveNeeds objective_needs(const std::string& name, const ObjectiveOptions& opts) {
  return make_objective(name, opts, Schedule(ScheduleOptions{}))->needs();
}

}  // namespace retort
