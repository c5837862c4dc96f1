#include <gtest/gtest.h>

#include <ATen/CPUGeneratorImpl.h>

#include "retort/core/rng.h"
#include "retort/diffusion/parameterization.h"
#include "retort/diffusion/sampler.h"
#include "retort/diffusion/schedule.h"
#include "retort/diffusion/timesteps.h"
#include "test_util.h"

namespace retort {
namespace {

using test::max_abs_diff;

class ScheduleKinds : public ::testing::TestWithParam<ScheduleKind> {};

TEST_P(ScheduleKinds, DiscreteTableMatchesDefinitionAndIsMonotone) {
  Schedule s(ScheduleOptions{GetParam(), 1000, false});
  auto abar = s.discrete_alpha_bar();
  ASSERT_EQ(abar.size(0), 1000);
  // alpha_bar at t = (k+1)/T is the k-th table entry.
  for (int64_t k : {0, 1, 248, 249, 500, 998, 999}) {
    auto t = torch::tensor({s.time_of_step(k)}, torch::kFloat64);
    EXPECT_NEAR(s.alpha_bar(t).item<double>(), abar[k].item<double>(), 1e-12) << "k=" << k;
  }
  EXPECT_TRUE((abar.slice(0, 1) < abar.slice(0, 0, -1)).all().item<bool>());
  EXPECT_GT(abar[0].item<double>(), 0.99);
  EXPECT_LT(abar[999].item<double>(), 1e-2);
  EXPECT_NEAR(s.alpha_bar(torch::zeros({1}, torch::kFloat64)).item<double>(), 1.0, 1e-12);
  // alpha^2 + sigma^2 = 1 everywhere.
  auto t = torch::linspace(0, 1, 101, torch::kFloat64);
  EXPECT_LT(max_abs_diff(s.alpha(t).pow(2) + s.sigma(t).pow(2), torch::ones_like(t)), 1e-12);
}

TEST_P(ScheduleKinds, ContinuousClosedFormApproachesDiscreteTable) {
  Schedule d(ScheduleOptions{GetParam(), 1000, false});
  Schedule c(ScheduleOptions{GetParam(), 1000, true});
  auto t = torch::linspace(0.05, 0.95, 50, torch::kFloat64);
  auto ld = d.alpha_bar(t).log(), lc = c.alpha_bar(t).log();
  // log(1 - beta) ~ -beta and a half-step offset: agreement to a few percent of log alpha_bar.
  EXPECT_LT(((ld - lc).abs() / ld.abs().clamp_min(1e-3)).max().item<double>(), 0.05);
}

INSTANTIATE_TEST_SUITE_P(All, ScheduleKinds,
                         ::testing::Values(ScheduleKind::Linear, ScheduleKind::ScaledLinear, ScheduleKind::Cosine));

// Every draw of a run goes through Rng (core/rng.h): it must give LibTorch's own seeded draws, in
// order, record them for bench-step --dump, and resume from its state.
TEST(Rng, DrawsAreLibTorchsSeededDrawsAndResume) {
  Rng rng(7);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(7);
  std::vector<std::pair<std::string, torch::Tensor>> log;
  rng.record(&log);
  EXPECT_TRUE(torch::equal(rng.randn({3, 4}), at::randn({3, 4}, gen, torch::kFloat)));
  EXPECT_TRUE(torch::equal(rng.rand({5}), at::rand({5}, gen, torch::kFloat)));
  EXPECT_TRUE(torch::equal(rng.randint(2, 9, {6}), at::randint(2, 9, {6}, gen, torch::kLong)));
  auto w = torch::tensor({0.1, 0.0, 0.6, 0.3});
  EXPECT_TRUE(torch::equal(rng.categorical(w, 8), at::multinomial(w.to(torch::kDouble), 8, true, gen)));
  rng.record(nullptr);
  ASSERT_EQ(log.size(), 4u);
  EXPECT_EQ(log[2].first, "randint");
  EXPECT_EQ(log[2].second.scalar_type(), torch::kLong);
  auto saved = rng.state();
  auto a = rng.randn({2, 3});
  rng.set_state(saved);
  EXPECT_TRUE(torch::equal(rng.randn({2, 3}), a));
  EXPECT_FALSE(torch::equal(rng.randn({2, 3}), a));
}

TEST(Schedule, KnownValues) {
  // DDPM linear: alpha_bar_999 = prod(1 - linspace(1e-4, 2e-2, 1000)) ~ 4.04e-5.
  Schedule lin(ScheduleOptions{ScheduleKind::Linear, 1000, false});
  EXPECT_NEAR(lin.discrete_alpha_bar()[999].item<double>(), 4.04e-5, 0.05e-5);
  // Stable Diffusion scaled-linear: alpha_bar_999 ~ 0.00466.
  Schedule sd(ScheduleOptions{ScheduleKind::ScaledLinear, 1000, false});
  EXPECT_NEAR(sd.discrete_alpha_bar()[999].item<double>(), 0.00466, 0.0001);
}

TEST(Schedule, SnapRoundsUpToGrid) {
  Schedule s;
  auto t = torch::tensor({0.0, 0.0004, 0.25, 0.2501, 1.0}, torch::kFloat64);
  auto snapped = s.snap(t);
  EXPECT_NEAR(snapped[0].item<double>(), 0.001, 1e-12);  // never below the first step
  EXPECT_NEAR(snapped[2].item<double>(), 0.25, 1e-12);
  EXPECT_NEAR(snapped[3].item<double>(), 0.251, 1e-12);
  EXPECT_NEAR(snapped[4].item<double>(), 1.0, 1e-12);
  EXPECT_NEAR(s.time_of_step(249), 0.25, 1e-12);
  EXPECT_NEAR(s.time_of_step(999), 1.0, 1e-12);
}

TEST(Parameterization, ConversionsRoundTrip) {
  torch::manual_seed(0);
  Schedule s;
  auto t = torch::rand({16}, torch::kFloat64) * 0.98 + 0.01;
  auto a = s.alpha(t), sg = s.sigma(t);
  auto x0 = torch::randn({16, 3}, torch::kFloat64), eps = torch::randn({16, 3}, torch::kFloat64);
  auto xt = per_sample(a, x0) * x0 + per_sample(sg, x0) * eps;
  EXPECT_LT(max_abs_diff(x0_from_eps(xt, eps, a, sg), x0), 1e-9);
  EXPECT_LT(max_abs_diff(eps_from_x0(xt, x0, a, sg), eps), 1e-9);
  auto v = v_from_eps_x0(eps, x0, a, sg);
  EXPECT_LT(max_abs_diff(eps_from_v(xt, v, a, sg), eps), 1e-9);
  EXPECT_LT(max_abs_diff(x0_from_v(xt, v, a, sg), x0), 1e-9);
  EXPECT_LT(max_abs_diff(eps_from_score(score_from_eps(eps, sg), sg), eps), 1e-12);
  for (auto kind : {Prediction::Eps, Prediction::X0, Prediction::V})
    EXPECT_LT(max_abs_diff(to_eps(kind, training_target(kind, x0, eps, a, sg), xt, a, sg), eps), 1e-9);
}

TEST(TimeRange, AnnealsUpperBound) {
  TimeRange r;
  r.min = 0.02;
  r.max = 0.98;
  r.anneal = Anneal::Step;
  r.anneal_to = 0.5;
  r.anneal_at = 0.2;
  EXPECT_DOUBLE_EQ(r.bounds(0, 100).second, 0.98);
  EXPECT_DOUBLE_EQ(r.bounds(19, 100).second, 0.98);
  EXPECT_DOUBLE_EQ(r.bounds(20, 100).second, 0.5);
  r.anneal = Anneal::Linear;
  EXPECT_NEAR(r.bounds(50, 100).second, 0.74, 1e-12);
  Schedule s;
  Rng rng(1);
  auto t = r.sample(1000, 100, 100, s, rng, torch::kCPU);
  EXPECT_GE(t.min().item<double>(), 0.02 - 1e-6);
  EXPECT_LE(t.max().item<double>(), 0.5 + 1e-3);
}

TEST(Sampler, TrailingTimesStartAtOne) {
  Schedule s;
  auto times = sampling_times(s, 4);
  ASSERT_EQ(times.size(), 4u);
  EXPECT_NEAR(times[0], 1.0, 1e-9);
  EXPECT_NEAR(times[1], 0.75, 1e-9);
  EXPECT_NEAR(times[2], 0.5, 1e-9);
  EXPECT_NEAR(times[3], 0.25, 1e-9);
}

// With the exact score of N(m, s^2), DDIM (a discretised probability-flow ODE) and DDPM both
// transport N(0, 1) to N(m, s^2).
TEST(Sampler, DdimAndDdpmReachGaussianTarget) {
  Schedule sch;
  const double m = 0.7, sd = 0.3;
  EpsFn eps = [&](const torch::Tensor& xt, const torch::Tensor& t) {
    auto abar = sch.alpha_bar(t);
    auto a = per_sample(abar.sqrt(), xt), s2 = per_sample(1 - abar, xt);
    auto var = a * a * sd * sd + s2;
    return s2.sqrt() * (xt - a * m) / var;  // -sigma * score
  };
  Rng rng(3);
  for (int kind = 0; kind < 2; ++kind) {
    auto x = rng.randn({20000, 1});
    auto times = sampling_times(sch, kind == 0 ? 100 : 1000);
    auto out = kind == 0 ? ddim_sample(sch, eps, x, times, {}, rng) : ddpm_sample(sch, eps, x, times, rng);
    EXPECT_NEAR(out.mean().item<double>(), m, 0.02) << (kind ? "ddpm" : "ddim");
    EXPECT_NEAR(out.std().item<double>(), sd, 0.02) << (kind ? "ddpm" : "ddim");
  }
}

}  // namespace
}  // namespace retort
