// The critics converge to what the math says, checked against exact scores. When the generator's
// distribution q is itself a Gaussian mixture, its noisy score eps_q is known exactly, and:
//  * VSD / DMD's denoising loss E||eps_phi(x_t) - eps||^2 is minimised by eps_phi = eps_q;
//  * ASD's Eq. 6, E||eps_phi - eps||^2 + gamma ||eps_y - eps_phi||^2 with eps_phi = eps_y + delta,
//    is (1+gamma)|delta|^2 + 2<eps_y - eps, delta> + const pointwise, minimised by
//    eps_phi = eps_y + (eps_q - eps_y) / (1 + gamma). So ASD's generator gradient
//    w(t)(eps_y - eps_phi) is VSD's divided by (1 + gamma), and gamma <= -1 is unbounded.
#include <gtest/gtest.h>

#include "retort/bench/gmm_ratio.h"
#include "retort/distill/distribution_matching.h"
#include "retort/distill/gan.h"
#include "retort/distill/score_distillation.h"
#include "retort/models/fake_score.h"
#include "retort/models/gaussian_mixture.h"
#include "test_util.h"

namespace retort {
namespace {

double fit_and_compare(const std::string& method, double gamma) {
  torch::manual_seed(0);
  Schedule schedule;
  auto target = GaussianMixture::ring(3, 2, 1.5, 0.3, false);
  auto q = GaussianMixture::ring(2, 2, 0.8, 0.4, false);  // the "generator" distribution
  auto teacher = std::make_shared<MixtureTeacher>(target, schedule);
  MixtureTeacher q_exact(q, schedule);
  MlpOptions o;
  o.hidden = 64;
  o.blocks = 2;
  DeltaFake fake(teacher, o, schedule);
  ObjectiveOptions opts;
  opts.gamma = gamma;
  auto obj = make_objective(method, opts, schedule);
  torch::optim::Adam opt(trainable_parameters(*fake), 2e-3);
  Rng rng(1);
  const double t_fixed = 0.3;
  for (int i = 0; i < 1500; ++i) {
    CriticBatch b;
    b.x0 = q.sample(512, rng);
    b.noise = {torch::full({512}, t_fixed), rng.randn({512, 2})};
    auto loss = obj->critic_loss(b, Models{teacher.get(), fake.get(), nullptr});
    opt.zero_grad();
    loss.backward();
    opt.step();
  }
  torch::NoGradGuard ng;
  // Compare where q_t has mass.
  auto x0 = q.sample(2000, rng);
  auto t = torch::full({2000}, t_fixed);
  auto abar = schedule.alpha_bar(t);
  auto xt = per_sample(abar.sqrt(), x0) * x0 + per_sample((1 - abar).sqrt(), x0) * rng.randn({2000, 2});
  auto e_y = teacher->eps(xt, t, Cond{}), e_q = q_exact.eps(xt, t, Cond{});
  auto expect = e_y + (e_q - e_y) / (1 + gamma);  // gamma = 0: eps_q
  auto err = (fake->eps(xt, t, Cond{}) - expect).pow(2).sum(1).mean().sqrt().item<double>();
  auto scale = (expect - e_y).pow(2).sum(1).mean().sqrt().item<double>();
  EXPECT_GT(scale, 0.3) << "the comparison must not be trivial";
  return err / scale;
}

TEST(CriticOptimum, VsdFakeScoreConvergesToGeneratorScore) { EXPECT_LT(fit_and_compare("vsd", 0.0), 0.15); }

TEST(CriticOptimum, AsdFakeConvergesToExtrapolatedScore) { EXPECT_LT(fit_and_compare("asd", -0.5), 0.15); }

}  // namespace
}  // namespace retort

namespace retort {
namespace {

// The logistic loss's optimum is l = log p_real,t / p_fake,t. With an exact mixture as p_real and a
// known Gaussian as p_fake (bench-gmm's [ratio] check), a trained discriminator must recover the
// true log ratio at generated samples far better than the untrained one, and the softened-RKL
// weight 1/(r+1) closely.
TEST(CriticOptimum, DiscriminatorLearnsTheExactDensityRatio) {
  auto target = GaussianMixture::ring(4, 2, 2.5, 0.2, false);
  RatioCheckOptions o;
  o.steps = 600;
  o.batch = 256;
  o.hidden = 64;
  o.times = {0.2, 0.4};
  o.samples = 1000;
  std::vector<RatioAtTime> untrained;
  auto rows = check_density_ratio(target, Schedule{}, o, 0, torch::kCPU, &untrained);
  ASSERT_EQ(rows.size(), 2u);
  for (size_t i = 0; i < rows.size(); ++i) {
    SCOPED_TRACE(rows[i].t);
    EXPECT_GT(std::abs(rows[i].true_log_r), 0.05) << "the ratio must not be trivially 1";
    EXPECT_LT(rows[i].abs_error_log_r, 0.3);
    EXPECT_LT(rows[i].abs_error_log_r, 0.5 * untrained[i].abs_error_log_r);
    EXPECT_LT(rows[i].abs_error_weight, 0.05);
  }
}

}  // namespace
}  // namespace retort
