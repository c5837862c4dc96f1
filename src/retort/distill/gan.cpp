#include "retort/distill/gan.h"

namespace retort {
namespace F = torch::nn::functional;

torch::Tensor gan_discriminator_loss(const torch::Tensor& logit_real, const torch::Tensor& logit_fake) {
  return F::softplus(-logit_real).mean() + F::softplus(logit_fake).mean();
}

torch::Tensor gan_generator_loss(const torch::Tensor& logit_fake) { return F::softplus(-logit_fake).mean(); }

torch::Tensor GanObjective::generator_loss(const torch::Tensor& x0, const Cond& cond, const NoiseDraw& n,
                                           const Models& m) {
  return gan_generator_loss(m.disc->logit(noisy(x0, n), n.t, cond));
}

torch::Tensor GanObjective::critic_loss(const CriticBatch& b, const Models& m) {
  return gan_discriminator_loss(m.disc->logit(noisy(b.real_x0, b.real_noise), b.real_noise.t, b.real_cond),
                                m.disc->logit(noisy(b.x0, b.noise), b.noise.t, b.cond));
}

}  // namespace retort
