// The GAN objective and the logistic losses every discriminator shares. Build the objective through
// make_objective (objective.h).
#pragma once
#include "retort/distill/objective.h"

namespace retort {

// Non-saturating GAN on noisy samples: L_G = softplus(-l(x_t^g)), L_D = softplus(-l(x_t^r)) +
// softplus(l(x_t^g)).
class GanObjective : public Objective {
 public:
  using Objective::Objective;
  ObjectiveNeeds needs() const override { return {false, true, true}; }
  torch::Tensor generator_loss(const torch::Tensor& x0, const Cond& cond, const NoiseDraw& n,
                               const Models& m) override;
  torch::Tensor critic_loss(const CriticBatch& b, const Models& m) override;
};

// The logistic losses, shared by every discriminator.
torch::Tensor gan_discriminator_loss(const torch::Tensor& logit_real, const torch::Tensor& logit_fake);
torch::Tensor gan_generator_loss(const torch::Tensor& logit_fake);
// The same over a discriminator's parts (Discriminator::part_logits), averaged over the parts.
torch::Tensor gan_discriminator_loss(Discriminator& d, const torch::Tensor& xt_real, const torch::Tensor& t_real,
                                     const Cond& cond_real, const torch::Tensor& xt_fake, const torch::Tensor& t_fake,
                                     const Cond& cond_fake);
torch::Tensor gan_generator_loss(Discriminator& d, const torch::Tensor& xt_fake, const torch::Tensor& t,
                                 const Cond& cond);

}  // namespace retort
