// Seed 000's Equation 8 and the f-divergence family, checked numerically on 1-D Gaussians
// (methods.md section 2): for a fixed p and a generator q_theta = N(m, exp(s)^2), the divergence
// D_f(theta) = int q f(p/q) dx is computed by quadrature and differentiated by finite differences;
// the estimator the library implements, -E_q[h(r) (s_p - s_q) dx/dtheta] with h(r) = r^2 f''(r),
// is evaluated by Monte Carlo. At t = 0 both scores are exact.
#include <gtest/gtest.h>

#include <cmath>

#include "retort/core/rng.h"
#include "retort/distill/fdiv.h"

namespace retort {
namespace {

constexpr double kMuP = 0.3, kSdP = 1.2;

torch::Tensor log_gauss(const torch::Tensor& x, double mu, double sd) {
  return -0.5 * ((x - mu) / sd).pow(2) - std::log(sd) - 0.5 * std::log(2 * M_PI);
}

double divergence(FDivergence f, double m, double s) {
  auto x = torch::linspace(-15, 15, 300001, torch::kFloat64);
  auto lq = log_gauss(x, m, std::exp(s)), lp = log_gauss(x, kMuP, kSdP);
  auto integrand = lq.exp() * f_of_ratio(f, (lp - lq).exp());
  return torch::trapezoid(integrand, x).item<double>();
}

class FDivergenceGradient : public ::testing::TestWithParam<FDivergence> {};

TEST_P(FDivergenceGradient, EstimatorMatchesFiniteDifferenceOfQuadrature) {
  const FDivergence f = GetParam();
  const double m = -0.2, s = std::log(0.9), h = 1e-4;
  const double fd_m = (divergence(f, m + h, s) - divergence(f, m - h, s)) / (2 * h);
  const double fd_s = (divergence(f, m, s + h) - divergence(f, m, s - h)) / (2 * h);

  Rng rng(7);
  const int64_t n = 2'000'000;
  auto z = rng.randn({n}).to(torch::kFloat64);
  auto x = m + std::exp(s) * z;
  auto log_r = log_gauss(x, kMuP, kSdP) - log_gauss(x, m, std::exp(s));
  auto s_p = -(x - kMuP) / (kSdP * kSdP);
  auto s_q = -(x - m) / std::exp(2 * s);
  auto weight = h_of_logit(f, log_r) * (s_p - s_q);
  // x = m + exp(s) z: dx/dm = 1, dx/ds = exp(s) z.
  auto g_m = -weight, g_s = -weight * std::exp(s) * z;
  auto se = [&](const torch::Tensor& g) { return g.std().item<double>() / std::sqrt(double(n)); };
  EXPECT_NEAR(g_m.mean().item<double>(), fd_m, 5 * se(g_m) + 1e-4) << fdivergence_name(f) << " d/dm";
  EXPECT_NEAR(g_s.mean().item<double>(), fd_s, 5 * se(g_s) + 1e-4) << fdivergence_name(f) << " d/ds";
  // The check is not vacuous: the gradient is clearly non-zero here.
  EXPECT_GT(std::abs(fd_m) + std::abs(fd_s), 0.05);
}

// h(r) = r^2 f''(r), with f'' by finite differences of the library's f.
TEST_P(FDivergenceGradient, WeightIsRSquaredTimesSecondDerivative) {
  const FDivergence f = GetParam();
  for (double r : {0.1, 0.5, 1.0, 2.0, 7.0}) {
    const double e = 1e-4 * r;
    auto at = [&](double v) { return f_of_ratio(f, torch::tensor({v}, torch::kFloat64)).item<double>(); };
    double f2 = (at(r + e) - 2 * at(r) + at(r - e)) / (e * e);
    double h = h_of_logit(f, torch::tensor({std::log(r)}, torch::kFloat64)).item<double>();
    EXPECT_NEAR(h, r * r * f2, 1e-4 * std::max(1.0, std::abs(h))) << fdivergence_name(f) << " r=" << r;
  }
}

INSTANTIATE_TEST_SUITE_P(All, FDivergenceGradient,
                         ::testing::Values(FDivergence::ReverseKL, FDivergence::KL, FDivergence::JS,
                                           FDivergence::SoftenedRKL, FDivergence::Hellinger, FDivergence::Jeffreys),
                         [](const auto& info) { return fdivergence_name(info.param); });

// Seed 000 writes the softened RKL as int q (p/q + 1) log(1/2 + q/(2p)) = 2 KL((p+q)/2 || p); our
// f gives the same number.
TEST(SoftenedRkl, MatchesPaperFormAndMixtureKl) {
  auto x = torch::linspace(-15, 15, 300001, torch::kFloat64);
  auto q = log_gauss(x, -0.2, 0.9).exp(), p = log_gauss(x, kMuP, kSdP).exp();
  double paper = torch::trapezoid(q * (p / q + 1) * (0.5 + q / (2 * p)).log(), x).item<double>();
  auto mix = 0.5 * (p + q);
  double kl = torch::trapezoid(mix * (mix / p).log(), x).item<double>();
  EXPECT_NEAR(paper, divergence(FDivergence::SoftenedRKL, -0.2, std::log(0.9)), 1e-8);
  EXPECT_NEAR(paper, 2 * kl, 1e-8);
  EXPECT_GT(paper, 0.01);
}

// The weight 1/(r+1) from the discriminator logit l = log r is sigmoid(-l).
TEST(SoftenedRkl, WeightFromLogitIsSigmoidOfMinusLogit) {
  auto l = torch::linspace(-10, 10, 41, torch::kFloat64);
  auto h = h_of_logit(FDivergence::SoftenedRKL, l);
  EXPECT_LT((h - 1 / (l.exp() + 1)).abs().max().item<double>(), 1e-12);
}

}  // namespace
}  // namespace retort
