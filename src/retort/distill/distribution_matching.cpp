#include "retort/core/error.h"
#include "retort/diffusion/parameterization.h"
#include "retort/distill/distribution_matching.h"
#include "retort/distill/gan.h"

namespace retort {

ObjectiveNeeds DistributionMatching::needs() const { return {true, uses_disc(), uses_disc()}; }

torch::Tensor DistributionMatching::generator_grad(const torch::Tensor& x0, const Cond& cond,
                                                   const NoiseDraw& n, const Models& m) {
  torch::Tensor alpha, sigma;
  auto xt = noisy(x0, n, &alpha, &sigma);
  auto e_real = eps_cfg(*m.teacher, xt, n.t, cond, opts_.cfg_scale);
  auto e_fake = m.fake->eps(xt, n.t, cond);
  torch::Tensor grad;
  if (opts_.dmd_normalize) {
    auto x0_real = x0_from_eps(xt, e_real, alpha, sigma);
    auto x0_fake = x0_from_eps(xt, e_fake, alpha, sigma);
    auto norm = (x0 - x0_real).abs().flatten(1).mean(1).clamp_min(1e-8);
    grad = (x0_fake - x0_real) / per_sample(norm, x0);
  } else {
    grad = per_sample(time_weight(opts_.weighting, alpha, sigma), x0) * (e_real - e_fake);
  }
  if (needs_ratio(f_)) {
    auto logit = m.disc->logit(xt, n.t, cond).clamp(-opts_.logit_clamp, opts_.logit_clamp);
    auto h = h_of_logit(f_, logit);
    stats_["h_mean"] = h.mean().item<double>();  // before normalising, which would make it 1
    if (opts_.normalize_h) h = h / h.mean().clamp_min(1e-8);
    stats_["logit_mean"] = logit.mean().item<double>();
    grad = per_sample(h, x0) * grad;
  }
  return grad;
}

torch::Tensor DistributionMatching::generator_loss(const torch::Tensor& x0, const Cond& cond,
                                                   const NoiseDraw& n, const Models& m) {
  auto loss = GradientObjective::generator_loss(x0, cond, n, m);
  if (opts_.gan_weight > 0) {
    auto gan = gan_generator_loss(*m.disc, noisy(x0, n), n.t, cond);
    stats_["gan_g"] = gan.item<double>();
    loss = loss + opts_.gan_weight * gan;
  }
  return loss;
}

torch::Tensor DistributionMatching::critic_loss(const CriticBatch& b, const Models& m) {
  auto loss = denoising_loss(m.fake->eps(noisy(b.x0, b.noise), b.noise.t, b.cond), b.noise.eps);
  stats_["fake_dsm"] = loss.item<double>();
  if (uses_disc()) {
    if (!b.real_x0.defined()) throw Error(name_ + ": the discriminator needs real samples");
    auto d = discriminator_loss(*m.disc, b, noisy(b.real_x0, b.real_noise), noisy(b.x0, b.noise), opts_, stats_);
    stats_["disc"] = d.item<double>();
    loss = loss + opts_.disc_weight * d;
  }
  return loss;
}

}  // namespace retort
