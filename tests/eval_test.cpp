#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "retort/core/error.h"
#include "retort/eval/metrics.h"
#include "retort/models/gaussian_mixture.h"
#include "test_util.h"

namespace retort {
namespace {

// Four well-separated 2-D modes with unequal weights 0.1 .. 0.4.
GaussianMixture four_modes() {
  std::vector<MixtureComponent> c(4);
  const double means[4][2] = {{-4, 0}, {4, 0}, {0, -4}, {0, 4}};
  for (int k = 0; k < 4; ++k) {
    c[k].mean = {means[k][0], means[k][1]};
    c[k].cov = {{0.25, 0.0}, {0.0, 0.25}};
    c[k].weight = k + 1.0;
  }
  c[1].cov = {{0.5, 0.2}, {0.2, 0.2}};  // one tilted mode
  return GaussianMixture(c);
}

// Three 5-D modes with covariances from 0.01 to 1 along rotated axes: Euclidean and Mahalanobis
// distances disagree strongly here.
GaussianMixture anisotropic_5d() {
  Rng rng(11);
  std::vector<MixtureComponent> c(3);
  for (int k = 0; k < 3; ++k) {
    auto q = std::get<0>(torch::linalg_qr(rng.randn({5, 5}).to(torch::kFloat64)));
    auto l = torch::tensor({0.01, 0.04, 0.1, 0.5, 1.0}, torch::kFloat64);
    auto cov = q.matmul(torch::diag(l)).matmul(q.t());
    cov = 0.5 * (cov + cov.t());
    c[k].mean.assign(5, 0.0);
    c[k].mean[k] = 8.0;
    c[k].cov.assign(5, std::vector<double>(5));
    for (int i = 0; i < 5; ++i)
      for (int j = 0; j < 5; ++j) c[k].cov[i][j] = cov[i][j].item<double>();
    c[k].weight = 1.0 + k;
  }
  return GaussianMixture(c);
}

double weight(const GaussianMixture& g, int k) { return g.weights()[k].item<double>(); }

TEST(EvalModes, ExactSamplesCoverEveryModeWithTheRightMass) {
  auto g = four_modes();
  Rng rng(1);
  auto x = g.sample(4000, rng);
  auto r = mode_report(g, x);
  EXPECT_EQ(r.total, 4);
  EXPECT_EQ(r.covered, 4);
  ASSERT_EQ(r.mass.size(), 4u);
  for (int k = 0; k < 4; ++k) EXPECT_NEAR(r.mass[k], weight(g, k), 0.025) << "mode " << k;
  EXPECT_LT(r.mass_tv, 0.03);
  // P(chi2_2 <= 9) = 1 - exp(-4.5) = 0.9889; sd of the estimate ~0.0017.
  EXPECT_NEAR(r.in_3sigma, 1 - std::exp(-4.5), 0.008);
}

TEST(EvalModes, SamplesCollapsedOnOneModeCoverOnlyIt) {
  auto g = four_modes();
  Rng rng(2);
  auto x = g.means()[3].unsqueeze(0) + 0.5 * rng.randn({2000, 2});
  auto r = mode_report(g, x);
  EXPECT_EQ(r.covered, 1);
  EXPECT_NEAR(r.mass[3], 1.0, 1e-3);
  EXPECT_NEAR(r.mass_tv, 1 - weight(g, 3), 1e-3);
  // Mode weights 0.1, 0.2, 0.3: the coverage threshold w/4 is per mode.
  auto y = torch::cat({g.means()[0].unsqueeze(0) + 0.5 * rng.randn({20, 2}),  // 2% < 0.1 / 4
                       g.means()[1].unsqueeze(0) + 0.1 * rng.randn({980, 2})});
  auto s = mode_report(g, y);
  EXPECT_EQ(s.covered, 1);
  EXPECT_NEAR(s.mass[0], 0.02, 1e-3);
}

TEST(EvalModes, NonFiniteSamplesBelongToNoMode) {
  auto g = four_modes();
  Rng rng(3);
  auto x = g.sample(1000, rng);
  x.slice(0, 0, 250).fill_(std::numeric_limits<float>::quiet_NaN());
  x.slice(0, 250, 500).fill_(std::numeric_limits<float>::infinity());
  auto r = mode_report(g, x);
  double total = 0;
  for (double m : r.mass) {
    EXPECT_TRUE(std::isfinite(m));
    total += m;
  }
  EXPECT_NEAR(total, 0.5, 1e-6);
  EXPECT_LT(r.in_3sigma, 0.51);
  EXPECT_GT(r.mass_tv, 0.49);
  // Finite but far beyond float32's Gaussian tails: also nowhere, not NaN.
  auto far = torch::full({10, 2}, 1e30f);
  auto f = mode_report(g, far);
  EXPECT_EQ(f.covered, 0);
  EXPECT_NEAR(f.mass_tv, 1.0, 1e-6);  // the weights are float32
  EXPECT_EQ(f.in_3sigma, 0.0);
}

TEST(EvalModes, AnisotropicFiveDimUsesMahalanobisDistance) {
  auto g = anisotropic_5d();
  Rng rng(4);
  auto x = g.sample(4000, rng);
  auto r = mode_report(g, x);
  EXPECT_EQ(r.covered, 3);
  EXPECT_LT(r.mass_tv, 0.03);
  // P(chi2_5 <= 9) = 0.8909; a Euclidean radius of 3 would give ~1.
  EXPECT_NEAR(r.in_3sigma, 0.8909, 0.02);
  // Isotropic noise of sd 0.5 around the means: well inside Euclidean radius 3, but 5 sd out along the
  // 0.01-variance axes (P(in 3 sigma) ~0.21; a Euclidean test would give ~1).
  auto y = g.means().index_select(0, torch::arange(3).repeat(300)) + 0.5 * rng.randn({900, 5});
  EXPECT_LT(mode_report(g, y).in_3sigma, 0.3);
}

TEST(EvalDistances, IdenticalSetsAreZero) {
  auto g = four_modes();
  Rng rng(5);
  auto x = g.sample(2500, rng);  // more rows than one pairwise block
  auto bw = mmd_bandwidths(x);
  EXPECT_LT(mmd_rbf(x, x, bw), 1e-12);
  EXPECT_EQ(energy_distance(x, x), 0.0);
  EXPECT_LT(sliced_w2(x, x, 16, rng), 1e-12);
}

TEST(EvalDistances, KnownSmallValues) {
  // One point each, 1 apart, one bandwidth 1: MMD^2 = 1 + 1 - 2 exp(-1/2).
  auto a = torch::zeros({1, 1}), b = torch::ones({1, 1});
  EXPECT_NEAR(mmd_rbf(a, b, {1.0}), 2 - 2 * std::exp(-0.5), 1e-12);
  // Energy: 2 * 1 - 0 - 0.
  EXPECT_NEAR(energy_distance(a, b), 2.0, 1e-12);
  // Pairwise distances of {0..4}: median 2.
  auto line = torch::arange(5, torch::kFloat32).unsqueeze(1);
  auto bw = mmd_bandwidths(line);
  std::vector<double> expect{0.2, 0.4, 1.0, 2.0, 4.0};
  ASSERT_EQ(bw.size(), expect.size());
  for (size_t i = 0; i < bw.size(); ++i) EXPECT_NEAR(bw[i], expect[i], 1e-9);
  // Unequal sizes compare quantiles: {0, 1} read at levels 1/8, 3/8, 5/8, 7/8 is {0, .25, .75, 1}.
  Rng rng(6);
  auto two = torch::tensor({0.f, 1.f}).unsqueeze(1), four = torch::tensor({1.f, 0.75f, 0.f, 0.25f}).unsqueeze(1);
  EXPECT_LT(sliced_w2(two, four, 4, rng), 1e-9);
  EXPECT_NEAR(sliced_w2(two, four + 0.5, 4, rng), 0.5, 1e-9);
}

// N(0, 1) represented by its n quantiles at levels (i + 0.5) / n: no sampling noise, so closed forms
// can be checked tightly.
torch::Tensor normal_quantiles(int64_t n) {
  auto u = (torch::arange(n, torch::kFloat64) + 0.5) / double(n);
  return (std::sqrt(2.0) * torch::erfinv(2 * u - 1)).to(torch::kFloat32).unsqueeze(1);
}

TEST(EvalDistances, OneDimGaussiansHaveClosedForms) {
  Rng rng(7);
  for (double m : {0.5, 2.0}) {
    // Different sizes, shuffled: exercises the quantile interpolation and the sort.
    auto x = normal_quantiles(3000), y = normal_quantiles(5000) + m;
    y = y.index_select(0, rng.rand({5000}).argsort());
    // In 1-D every direction is +-the axis: SW2 = W2 = |m|.
    EXPECT_NEAR(sliced_w2(x, y, 8, rng), m, 0.01) << "m=" << m;
    // 2 E|N(m, 2)| - 2 E|N(0, 2)|, with E|N(m, s^2)| = s sqrt(2/pi) exp(-m^2 / 2s^2) + m erf(m / (s sqrt 2)).
    const double s = std::sqrt(2.0);
    double e_xy = s * std::sqrt(2 / M_PI) * std::exp(-m * m / (2 * s * s)) + m * std::erf(m / (s * std::sqrt(2.0)));
    double expect = 2 * e_xy - 2 * (2 / std::sqrt(M_PI));
    EXPECT_NEAR(energy_distance(x, y), expect, 0.01) << "m=" << m;
  }
  // Truly random samples: the same within sampling noise.
  auto x = rng.randn({2000, 1}), y = rng.randn({2000, 1}) + 1.0;
  EXPECT_NEAR(sliced_w2(x, y, 8, rng), 1.0, 0.1);
}

TEST(EvalDistances, ShiftIncreasesEveryDistance) {
  auto g = four_modes();
  Rng rng(8);
  auto ref = g.sample(1500, rng), fresh = g.sample(1500, rng);
  auto bw = mmd_bandwidths(ref);
  double last_mmd = -1, last_sw2 = -1, last_energy = -1;
  for (double shift : {0.0, 0.5, 1.0, 2.0}) {
    auto x = fresh + torch::tensor({shift, -0.5 * shift}).to(torch::kFloat32);
    Rng proj(9);  // the same directions for every shift
    double mmd = mmd_rbf(x, ref, bw), sw2 = sliced_w2(x, ref, 64, proj), energy = energy_distance(x, ref);
    EXPECT_GT(mmd, last_mmd) << "shift " << shift;
    EXPECT_GT(sw2, last_sw2) << "shift " << shift;
    EXPECT_GT(energy, last_energy) << "shift " << shift;
    if (shift == 0.0) {
      // Fresh exact samples: only finite-sample noise. W2 is the noisiest: a 1% imbalance of mass
      // between modes 8 apart already costs sqrt(0.01 * 64) = 0.8 in 1-D.
      EXPECT_LT(mmd, 0.01);
      EXPECT_LT(sw2, 0.45);
      EXPECT_LT(energy, 0.01);
    }
    last_mmd = mmd, last_sw2 = sw2, last_energy = energy;
  }
  // A pure translation t of the same samples: 1-D W2 along theta is |t . theta|, and the mean of
  // cos^2 over directions in 2-D is 1/2, so SW2 = |t| / sqrt(2) (64 directions: ~5% noise).
  Rng proj(9);
  auto t = torch::tensor({1.0f, -0.5f});
  EXPECT_NEAR(sliced_w2(ref + t, ref, 64, proj), std::sqrt(1.25 / 2), 0.08);
}

TEST(EvalSamples, EvaluateSamplesSeparatesGoodFromCollapsed) {
  auto g = anisotropic_5d();
  Rng rng(10);
  auto ref = g.sample(1500, rng), good = g.sample(1200, rng);
  auto bad = g.means()[0].unsqueeze(0) + 0.1 * rng.randn({1200, 5});
  auto a = evaluate_samples(g, good, ref, rng), b = evaluate_samples(g, bad, ref, rng);
  EXPECT_EQ(a.modes_total, 3);
  EXPECT_EQ(a.modes_covered, 3);
  EXPECT_EQ(b.modes_covered, 1);
  ASSERT_EQ(a.mode_mass.size(), 3u);
  EXPECT_NEAR(b.mass_tv, 1 - weight(g, 0), 1e-3);
  EXPECT_LT(a.mass_tv, 0.05);
  EXPECT_LT(a.mmd * 10, b.mmd);
  EXPECT_LT(a.sw2 * 3, b.sw2);
  EXPECT_LT(a.energy * 10, b.energy);
  EXPECT_GT(a.in_3sigma, 0.85);
  // Diverged samples: distances are NaN, not a misleading 0.
  auto nan = torch::full({100, 5}, std::numeric_limits<float>::quiet_NaN());
  auto c = evaluate_samples(g, nan, ref, rng);
  EXPECT_TRUE(std::isnan(c.mmd) && std::isnan(c.sw2) && std::isnan(c.energy));
  EXPECT_EQ(c.modes_covered, 0);
}

TEST(EvalErrors, BadShapesAndEmptyInputsThrow) {
  auto g = four_modes();
  auto x2 = torch::zeros({10, 2}), x3 = torch::zeros({10, 3});
  Rng rng(0);
  EXPECT_THROW(mode_report(g, x3), Error);
  EXPECT_THROW(mode_report(g, torch::zeros({0, 2})), Error);
  EXPECT_THROW(mode_report(g, torch::zeros({10})), Error);
  EXPECT_THROW(mode_report(g, torch::Tensor()), Error);
  EXPECT_THROW(mmd_rbf(x2, x3, {1.0}), Error);
  EXPECT_THROW(mmd_rbf(x2, x2, {}), Error);
  EXPECT_THROW(mmd_rbf(x2, x2, {0.0}), Error);
  EXPECT_THROW(sliced_w2(x2, x3, 8, rng), Error);
  EXPECT_THROW(sliced_w2(x2, x2, 0, rng), Error);
  EXPECT_THROW(energy_distance(x2, x3), Error);
  EXPECT_THROW(energy_distance(torch::zeros({0, 2}), x2), Error);
  EXPECT_THROW(mmd_bandwidths(torch::zeros({1, 2})), Error);
  EXPECT_THROW(mmd_bandwidths(x2), Error);  // all identical: no scale
  EXPECT_THROW(evaluate_samples(g, x2, x3, rng), Error);
  try {
    mode_report(g, x3);
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("dimension 3"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace retort
