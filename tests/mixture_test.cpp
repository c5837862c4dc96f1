#include <gtest/gtest.h>

#include "retort/core/error.h"
#include "retort/diffusion/sampler.h"
#include "retort/models/gaussian_mixture.h"
#include "test_util.h"

namespace retort {
namespace {

using test::max_abs_diff;

GaussianMixture anisotropic_3d(bool classes) {
  std::vector<MixtureComponent> c(3);
  c[0] = {{1.0, 0.0, -0.5}, {{0.3, 0.1, 0.0}, {0.1, 0.2, 0.05}, {0.0, 0.05, 0.1}}, 1.0, classes ? 0 : kNullClass};
  c[1] = {{-1.0, 0.5, 0.0}, {{0.05, 0.0, 0.0}, {0.0, 0.4, -0.1}, {0.0, -0.1, 0.2}}, 2.0, classes ? 1 : kNullClass};
  c[2] = {{0.0, -1.0, 1.0}, {{0.1, 0.0, 0.0}, {0.0, 0.1, 0.0}, {0.0, 0.0, 0.1}}, 0.5, classes ? 1 : kNullClass};
  return GaussianMixture(c);
}

// eps(x_t) = -sigma_t grad log p_t(x_t), the gradient taken by autograd through log_prob.
TEST(MixtureTeacher, EpsEqualsMinusSigmaTimesAutogradScore) {
  for (bool conditional : {false, true}) {
    MixtureTeacher teacher(anisotropic_3d(conditional), Schedule());
    Rng rng(0);
    auto x = rng.randn({64, 3}) * 1.5;
    auto t = rng.rand({64}) * 0.98 + 0.01;
    Cond cond;
    if (conditional) cond.labels = torch::tensor(std::vector<int64_t>(64, 1));
    x.set_requires_grad(true);
    auto lp = teacher.log_prob(x, t, cond);
    auto score = torch::autograd::grad({lp.sum()}, {x})[0];
    auto sigma = teacher.schedule().sigma(t);
    auto eps = teacher.eps(x.detach(), t, cond);
    EXPECT_LT(max_abs_diff(eps, -sigma.unsqueeze(1) * score), 1e-4) << "conditional=" << conditional;
  }
}

TEST(MixtureTeacher, CleanLogProbMatchesDirectDensity) {
  auto g = anisotropic_3d(false);
  Rng rng(1);
  auto x = rng.randn({10, 3});
  auto lp = g.log_prob(x, torch::ones({10}), torch::zeros({10}));
  // Direct evaluation with the full covariance matrices.
  std::vector<double> expect(10, 0.0);
  auto cov = torch::einsum("kde,ke,kfe->kdf", {g.eigvecs(), g.eigvals(), g.eigvecs()}).to(torch::kFloat64);
  for (int i = 0; i < 10; ++i) {
    double p = 0;
    for (int k = 0; k < 3; ++k) {
      auto d = (x[i].to(torch::kFloat64) - g.means()[k].to(torch::kFloat64)).unsqueeze(1);
      double quad = d.t().mm(torch::linalg_inv(cov[k])).mm(d).item<double>();
      double det = torch::linalg_det(cov[k]).item<double>();
      p += g.weights()[k].item<double>() * std::exp(-0.5 * quad) / std::sqrt(std::pow(2 * M_PI, 3) * det);
    }
    EXPECT_NEAR(lp[i].item<double>(), std::log(p), 1e-4);
  }
}

TEST(MixtureTeacher, ConditionalSamplesStayInTheirClass) {
  auto g = anisotropic_3d(true);
  Rng rng(2);
  auto labels = torch::zeros({500}, torch::kLong);
  torch::Tensor comp;
  g.sample(500, rng, labels, &comp);
  EXPECT_TRUE((comp == 0).all().item<bool>());
  EXPECT_THROW(g.sample(5, rng, torch::full({5}, 7, torch::kLong)), Error);
}

TEST(MixtureTeacher, SampleMomentsMatch) {
  auto g = anisotropic_3d(false);
  Rng rng(3);
  auto x = g.sample(200000, rng).to(torch::kFloat64);
  auto w = g.weights().to(torch::kFloat64);
  auto mean = (w.unsqueeze(1) * g.means().to(torch::kFloat64)).sum(0);
  EXPECT_LT(max_abs_diff(x.mean(0), mean), 0.01);
}

// DDIM with the exact teacher from pure noise recovers the mixture's mode weights.
TEST(MixtureTeacher, DdimWithExactScoreRecoversModeWeights) {
  auto g = GaussianMixture::ring(4, 2, 1.5, 0.1, false);
  Schedule sch;
  MixtureTeacher teacher(g, sch);
  Rng rng(4);
  EpsFn fn = [&](const torch::Tensor& x, const torch::Tensor& t) { return teacher.eps(x, t, Cond{}); };
  auto x = ddim_sample(sch, fn, rng.randn({4000, 2}), sampling_times(sch, 100), {}, rng);
  auto nearest = g.mahalanobis2(x).argmin(1);
  for (int k = 0; k < 4; ++k) EXPECT_NEAR((nearest == k).to(torch::kFloat64).mean().item<double>(), 0.25, 0.03);
  EXPECT_GT((g.mahalanobis2(x).amin(1) < 9).to(torch::kFloat64).mean().item<double>(), 0.95);
}

TEST(GaussianMixture, RejectsInvalidComponents) {
  MixtureComponent ok{{0.0, 0.0}, {{1.0, 0.0}, {0.0, 1.0}}, 1.0, kNullClass};
  auto not_pd = ok;
  not_pd.cov = {{1.0, 2.0}, {2.0, 1.0}};
  EXPECT_THROW(GaussianMixture({ok, not_pd}), ConfigError);
  auto asym = ok;
  asym.cov = {{1.0, 0.5}, {0.0, 1.0}};
  EXPECT_THROW(GaussianMixture({asym}), ConfigError);
  auto wrong_dim = ok;
  wrong_dim.mean = {0.0, 0.0, 0.0};
  EXPECT_THROW(GaussianMixture({ok, wrong_dim}), ConfigError);
  auto neg = ok;
  neg.weight = -1;
  EXPECT_THROW(GaussianMixture({neg}), ConfigError);
  try {
    GaussianMixture({ok, not_pd});
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("mode[1]"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace retort
