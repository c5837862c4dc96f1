// DMD, DMD2 and the f-divergence objectives. Build them through make_objective (objective.h).
#pragma once
#include "retort/distill/objective.h"

namespace retort {

// DMD and the f-divergence family (fdiv.h): h(r) (x0_fake - x0_real) / mean|x0 - x0_real|, with
// x0_real from the guided teacher, x0_fake from the fake score, r = exp(clamp(l)) from the
// discriminator; optionally plus a non-saturating GAN term (DMD2). The critic is the fake score's
// denoising loss plus, when a discriminator is used, its logistic loss on real vs generated.
class DistributionMatching : public GradientObjective {
 public:
  DistributionMatching(std::string name, ObjectiveOptions opts, Schedule schedule, FDivergence f)
      : GradientObjective(std::move(name), opts, std::move(schedule)), f_(f) {}
  ObjectiveNeeds needs() const override;
  torch::Tensor generator_grad(const torch::Tensor& x0, const Cond& cond, const NoiseDraw& n,
                               const Models& m) override;
  torch::Tensor generator_loss(const torch::Tensor& x0, const Cond& cond, const NoiseDraw& n,
                               const Models& m) override;
  torch::Tensor critic_loss(const CriticBatch& b, const Models& m) override;

 private:
  bool uses_disc() const { return needs_ratio(f_) || opts_.gan_weight > 0; }
  FDivergence f_;
};

}  // namespace retort
