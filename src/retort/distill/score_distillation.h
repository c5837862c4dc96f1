// SDS, VSD and ASD, the score-distillation objectives. Build them through make_objective (objective.h).
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

}  // namespace retort
