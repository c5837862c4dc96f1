#include "retort/distill/gan.h"

#include "retort/core/error.h"

namespace retort {
namespace F = torch::nn::functional;

torch::Tensor gan_discriminator_loss(const torch::Tensor& logit_real, const torch::Tensor& logit_fake) {
  return F::softplus(-logit_real).mean() + F::softplus(logit_fake).mean();
}

torch::Tensor gan_generator_loss(const torch::Tensor& logit_fake) { return F::softplus(-logit_fake).mean(); }

torch::Tensor gan_discriminator_loss(const std::vector<torch::Tensor>& real, const std::vector<torch::Tensor>& fake) {
  auto loss = gan_discriminator_loss(real.at(0), fake.at(0));
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

torch::Tensor discriminator_loss(Discriminator& d, const CriticBatch& b, const torch::Tensor& xt_real,
                                 const torch::Tensor& xt_fake, const ObjectiveOptions& o,
                                 std::map<std::string, double>& stats) {
  auto real = d.part_logits(xt_real, b.real_noise.t, b.real_cond);
  auto fake = d.part_logits(xt_fake, b.noise.t, b.cond);
  auto loss = gan_discriminator_loss(real, fake);
  {
    torch::NoGradGuard ng;
    auto lr = mean_part_logit(real), lf = mean_part_logit(fake);
    stats["logit_real"] = lr.mean().item<double>();
    stats["logit_fake"] = lf.mean().item<double>();
    stats["disc_accuracy"] =
        0.5 * ((lr > 0).to(torch::kFloat).mean() + (lf < 0).to(torch::kFloat).mean()).item<double>();
  }
  if (o.r1_weight > 0) {
    if (!b.real_perturbation.defined()) throw Error("r1_weight > 0: the critic batch has no real_perturbation");
    auto moved = d.part_logits(xt_real + o.r1_sigma * b.real_perturbation, b.real_noise.t, b.real_cond);
    auto r1 = (real[0] - moved[0]).pow(2).mean();
    for (size_t i = 1; i < real.size(); ++i) r1 = r1 + (real[i] - moved[i]).pow(2).mean();
    r1 = r1 / double(real.size());
    stats["r1"] = r1.item<double>();
    loss = loss + o.r1_weight * r1;
  }
  return loss;
}

torch::Tensor GanObjective::critic_loss(const CriticBatch& b, const Models& m) {
  return discriminator_loss(*m.disc, b, noisy(b.real_x0, b.real_noise), noisy(b.x0, b.noise), opts_, stats_);
}

}  // namespace retort
