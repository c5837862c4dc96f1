#include "retort/core/error.h"
#include "retort/distill/score_distillation.h"

namespace retort {

ObjectiveNeeds ScoreDistillation::needs() const {
  return {kind_ != Sds, false, kind_ == Asd && opts_.asd_real};
}

torch::Tensor ScoreDistillation::generator_grad(const torch::Tensor& x0, const Cond& cond, const NoiseDraw& n,
                                                const Models& m) {
  torch::Tensor alpha, sigma;
  auto xt = noisy(x0, n, &alpha, &sigma);
  auto e_real = eps_cfg(*m.teacher, xt, n.t, cond, opts_.cfg_scale);
  auto e_ref = kind_ == Sds ? n.eps : m.fake->eps(xt, n.t, cond);
  return per_sample(time_weight(opts_.weighting, alpha, sigma), x0) * (e_real - e_ref);
}

torch::Tensor ScoreDistillation::critic_loss(const CriticBatch& b, const Models& m) {
  if (kind_ == Sds) return {};
  auto xg = noisy(b.x0, b.noise);
  auto e_phi = m.fake->eps(xg, b.noise.t, b.cond);
  auto loss = denoising_loss(e_phi, b.noise.eps);
  if (kind_ == Vsd) return loss;
  auto teacher_eps = [&](const torch::Tensor& xt, const torch::Tensor& t, const Cond& c) {
    c10::InferenceMode frozen;  // the frozen teacher's output is a target: pred - target saves neither
    return m.teacher->eps(xt, t, c);
  };
  loss = loss + opts_.gamma * denoising_loss(teacher_eps(xg, b.noise.t, b.cond), e_phi);
  if (opts_.asd_real) {
    if (!b.real_x0.defined()) throw Error("asd with real data: the critic batch has no real samples");
    auto xr = noisy(b.real_x0, b.real_noise);
    auto e_phi_r = m.fake->eps(xr, b.real_noise.t, b.real_cond);
    loss = loss - denoising_loss(e_phi_r, b.real_noise.eps) +
           opts_.eta * denoising_loss(teacher_eps(xr, b.real_noise.t, b.real_cond), e_phi_r);
  }
  return loss;
}

}  // namespace retort
