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
torch::Tensor gan_discriminator_loss(const std::vector<torch::Tensor>& real, const std::vector<torch::Tensor>& fake);
torch::Tensor gan_generator_loss(Discriminator& d, const torch::Tensor& xt_fake, const torch::Tensor& t,
                                 const Cond& cond);
// The discriminator's loss in a critic update, given the batch noised to xt_real and xt_fake: the
// logistic loss over its parts, plus the approximate R1 penalty when o.r1_weight > 0 (its
// perturbation from b.real_perturbation). Writes logit_real, logit_fake and disc_accuracy (the
// fraction classified right: a fooled discriminator and one that never learnt have the same loss
// near log 4, not the same logits) and r1 to `stats`.
torch::Tensor discriminator_loss(Discriminator& d, const CriticBatch& b, const torch::Tensor& xt_real,
                                 const torch::Tensor& xt_fake, const ObjectiveOptions& o,
                                 std::map<std::string, double>& stats);

}  // namespace retort
