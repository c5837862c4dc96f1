#include "retort/distill/gan.h"

namespace retort {
namespace F = torch::nn::functional;

torch::Tensor gan_discriminator_loss(const torch::Tensor& logit_real, const torch::Tensor& logit_fake) {
  return F::softplus(-logit_real).mean() + F::softplus(logit_fake).mean();
}

torch::Tensor gan_generator_loss(const torch::Tensor& logit_fake) { return F::softplus(-logit_fake).mean(); }

torch::Tensor gan_discriminator_loss(Discriminator& d, const torch::Tensor& xt_real, const torch::Tensor& t_real,
                                     const Cond& cond_real, const torch::Tensor& xt_fake, const torch::Tensor& t_fake,
                                     const Cond& cond_fake) {
  auto real = d.part_logits(xt_real, t_real, cond_real);
  auto fake = d.part_logits(xt_fake, t_fake, cond_fake);
  auto loss = gan_discriminator_loss(real[0], fake[0]);
  for (size_t i = 1; i < real.size(); ++i) loss = loss + gan_discriminator_loss(real[i], fake[i]);
  return loss / double(real.size());
}

torch::Tensor gan_generator_loss(Discriminator& d, const torch::Tensor& xt_fake, const torch::Tensor& t,
                                 const Cond& cond) {
  auto fake = d.part_logits(xt_fake, t, cond);
  auto loss = gan_generator_loss(fake[0]);
  for (size_t i = 1; i < fake.size(); ++i) loss = loss + gan_generator_loss(fake[i]);
  return loss / double(fake.size());
}

torch::Tensor GanObjective::generator_loss(const torch::Tensor& x0, const Cond& cond, const NoiseDraw& n,
                                           const Models& m) {
  return gan_generator_loss(*m.disc, noisy(x0, n), n.t, cond);
}

torch::Tensor GanObjective::critic_loss(const CriticBatch& b, const Models& m) {
  return gan_discriminator_loss(*m.disc, noisy(b.real_x0, b.real_noise), b.real_noise.t, b.real_cond,
                                noisy(b.x0, b.noise), b.noise.t, b.cond);
}

}  // namespace retort
