// The concrete objectives. Build them through make_objective (objective.h).
#pragma once
#include "retort/distill/objective.h"

namespace retort {

// SDS, VSD and ASD: generator gradient w(t) (eps_cfg(x_t; y) - eps_ref) with eps_ref the injected
// noise (SDS) or the fake score eps_phi(x_t) (VSD; ASD, seed 002 Eq. 3). They differ in how
// eps_phi is trained:
//   VSD: ||eps_phi(x_t^g) - eps||^2
//   ASD: ||eps_phi(x_t^g) - eps||^2 + gamma ||eps_y(x_t^g) - eps_phi(x_t^g)||^2           (Eq. 6)
//        + [ -||eps_phi(x_t^r) - eps||^2 + eta ||eps_y(x_t^r) - eps_phi(x_t^r)||^2 ]     (Eq. 5)
// with eps_y the conditional teacher, detached.
class ScoreDistillation : public GradientObjective {
 public:
  enum Kind { Sds, Vsd, Asd };
  ScoreDistillation(std::string name, ObjectiveOptions opts, Schedule schedule, Kind kind)
      : GradientObjective(std::move(name), opts, std::move(schedule)), kind_(kind) {}
  ObjectiveNeeds needs() const override;
  torch::Tensor generator_grad(const torch::Tensor& x0, const Cond& cond, const NoiseDraw& n,
                               const Models& m) override;
  torch::Tensor critic_loss(const CriticBatch& b, const Models& m) override;

 private:
  Kind kind_;
};

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

}  // namespace retort
