// Every objective's surrogate loss differentiates to exactly its intended gradient, computed here
// independently from the models; ASD reduces to SDS and VSD in the cases seed 002 names.
#include <gtest/gtest.h>

#include "retort/core/error.h"
#include "retort/diffusion/parameterization.h"
#include "retort/distill/distribution_matching.h"
#include "retort/distill/gan.h"
#include "retort/distill/score_distillation.h"
#include "retort/models/fake_score.h"
#include "retort/models/gaussian_mixture.h"
#include "retort/models/mlp.h"
#include "test_util.h"

namespace retort {
namespace {

using test::max_abs_diff;
constexpr double kCfg = 3.0;

// A conditional 2-class teacher, a fake score that differs from it, and a random discriminator.
struct Fixture {
  Schedule schedule;
  std::shared_ptr<MixtureTeacher> teacher;
  DeltaFake fake{nullptr};
  MlpDiscriminator disc{nullptr};
  torch::Tensor x0, eps, t;
  Cond cond;
  Fixture() {
    torch::manual_seed(0);
    teacher = std::make_shared<MixtureTeacher>(GaussianMixture::ring(4, 2, 1.5, 0.2, true), schedule);
    MlpOptions o;
    o.dim = 2;
    o.hidden = 32;
    o.blocks = 1;
    o.num_classes = 4;
    fake = DeltaFake(teacher, o, schedule);
    {
      torch::NoGradGuard ng;  // move the fake away from the teacher
      for (auto& p : fake->parameters()) p.add_(torch::randn_like(p) * 0.3);
    }
    disc = MlpDiscriminator(o);
    Rng rng(1);
    x0 = rng.randn({32, 2});
    eps = rng.randn({32, 2});
    t = schedule.snap(rng.rand({32}) * 0.9 + 0.05);
    cond.labels = torch::arange(32) % 4;
  }
  Models models() { return {teacher.get(), fake.get(), disc.get()}; }
  // x0 noised to time n.t with noise n.eps.
  torch::Tensor noisy(const torch::Tensor& x0, const NoiseDraw& n) const {
    auto abar = schedule.alpha_bar(n.t);
    return per_sample(abar.sqrt(), x0) * x0 + per_sample((1 - abar).sqrt(), x0) * n.eps;
  }
  torch::Tensor xt() const { return noisy(x0, {t, eps}); }
  torch::Tensor eps_guided() {
    auto e_null = teacher->eps(xt(), t, cond.as_null()), e_y = teacher->eps(xt(), t, cond);
    return e_null + kCfg * (e_y - e_null);
  }
  torch::Tensor sigma2() const { return (1 - schedule.alpha_bar(t)).unsqueeze(1); }
  // d loss / d x0 by autograd.
  torch::Tensor autograd_grad(Objective& obj) {
    auto x = x0.clone().set_requires_grad(true);
    auto loss = obj.generator_loss(x, cond, NoiseDraw{t, eps}, models());
    return torch::autograd::grad({loss}, {x})[0];
  }
};

ObjectiveOptions guided() {
  ObjectiveOptions o;
  o.cfg_scale = kCfg;
  return o;
}

TEST(Objective, SdsSurrogateGradientIsWeightedNoiseResidual) {
  Fixture f;
  auto obj = make_objective("sds", guided(), f.schedule);
  auto expect = f.sigma2() * (f.eps_guided() - f.eps) / f.x0.numel();
  EXPECT_LT(max_abs_diff(f.autograd_grad(*obj), expect), 1e-7);
  EXPECT_GT(expect.abs().max().item<double>(), 1e-4);
}

TEST(Objective, VsdAndAsdSurrogateGradientUseFakeScore) {
  Fixture f;
  torch::Tensor e_fake;
  {
    torch::NoGradGuard ng;
    e_fake = f.fake->eps(f.xt(), f.t, f.cond);
  }
  auto expect = f.sigma2() * (f.eps_guided() - e_fake) / f.x0.numel();
  for (const char* name : {"vsd", "asd"}) {
    auto obj = make_objective(name, guided(), f.schedule);
    EXPECT_LT(max_abs_diff(f.autograd_grad(*obj), expect), 1e-7) << name;
  }
}

double logit_to_h(const std::string& name, double l) {
  double r = std::exp(l);
  if (name == "dmd") return 1;
  if (name == "kl") return r;
  if (name == "js") return r / (r + 1);
  if (name == "softened_rkl") return 1 / (r + 1);
  if (name == "hellinger") return std::sqrt(r) / 2;
  if (name == "jeffreys") return r + 1;
  ADD_FAILURE() << name;
  return 0;
}

TEST(Objective, DistributionMatchingSurrogateGradient) {
  Fixture f;
  torch::Tensor base, logits;
  {
    torch::NoGradGuard ng;
    auto abar = f.schedule.alpha_bar(f.t);
    auto a = abar.sqrt(), s = (1 - abar).sqrt();
    auto x0_real = x0_from_eps(f.xt(), f.eps_guided(), a, s);
    auto x0_fake = x0_from_eps(f.xt(), f.fake->eps(f.xt(), f.t, f.cond), a, s);
    base = (x0_fake - x0_real) / (f.x0 - x0_real).abs().mean(1, true);
    logits = f.disc->logit(f.xt(), f.t, f.cond).clamp(-10, 10);
  }
  for (const char* name : {"dmd", "softened_rkl", "kl", "js", "hellinger", "jeffreys"}) {
    auto obj = make_objective(name, guided(), f.schedule);
    auto h = torch::empty({32});
    for (int i = 0; i < 32; ++i) h[i] = logit_to_h(name, logits[i].item<double>());
    auto expect = h.unsqueeze(1) * base / f.x0.numel();
    EXPECT_LT(max_abs_diff(f.autograd_grad(*obj), expect), 1e-6) << name;
  }
}

TEST(Objective, Dmd2AddsGanGeneratorGradient) {
  Fixture f;
  auto opts = guided();
  opts.gan_weight = 0.5;
  auto dmd = make_objective("dmd", guided(), f.schedule);
  auto dmd2 = make_objective("dmd2", opts, f.schedule);
  // Gradient of the GAN term alone, by autograd through the discriminator.
  auto x = f.x0.clone().set_requires_grad(true);
  auto gan = torch::nn::functional::softplus(-f.disc->logit(f.noisy(x, {f.t, f.eps}), f.t, f.cond)).mean();
  auto g_gan = torch::autograd::grad({gan}, {x})[0];
  EXPECT_LT(max_abs_diff(f.autograd_grad(*dmd2), f.autograd_grad(*dmd) + 0.5 * g_gan), 1e-7);
  EXPECT_GT(g_gan.abs().max().item<double>(), 1e-5);
}

// A "fake score" that returns the very noise injected: ASD's generator gradient becomes SDS's.
struct InjectedNoise : Denoiser {
  torch::Tensor noise;
  torch::Tensor eps(const torch::Tensor&, const torch::Tensor&, const Cond&) override { return noise; }
};

TEST(Objective, AsdGeneratorGradientEqualsSdsWhenFakeIsInjectedNoise) {
  Fixture f;
  auto injected = std::make_shared<InjectedNoise>();
  injected->noise = f.eps;
  auto asd = make_objective("asd", guided(), f.schedule);
  auto sds = make_objective("sds", guided(), f.schedule);
  Models m{f.teacher.get(), injected.get(), nullptr};
  auto& asd_g = dynamic_cast<GradientObjective&>(*asd);
  auto& sds_g = dynamic_cast<GradientObjective&>(*sds);
  auto a = asd_g.generator_grad(f.x0, f.cond, {f.t, f.eps}, m);
  auto s = sds_g.generator_grad(f.x0, f.cond, {f.t, f.eps}, m);
  EXPECT_LT(max_abs_diff(a, s), 1e-7);
  EXPECT_GT(s.abs().max().item<double>(), 1e-3);
}

// Value and phi-gradient of the critic losses.
std::pair<double, std::vector<torch::Tensor>> critic(Objective& obj, Fixture& f, const CriticBatch& b) {
  auto loss = obj.critic_loss(b, f.models());
  auto params = trainable_parameters(*f.fake);
  auto grads = torch::autograd::grad({loss}, params);
  return {loss.item<double>(), grads};
}

CriticBatch batch_of(Fixture& f) {
  CriticBatch b;
  b.x0 = f.x0;
  b.cond = f.cond;
  b.noise = {f.t, f.eps};
  Rng rng(9);
  b.real_x0 = f.teacher->mixture().sample(32, rng, f.cond.labels);
  b.real_cond = f.cond;
  b.real_noise = {f.t.flip(0), rng.randn({32, 2})};
  return b;
}

TEST(Objective, AsdDiscriminatorLossEqualsVsdWhenGammaIsZero) {
  Fixture f;
  auto opts = guided();
  opts.gamma = 0.0;
  auto asd = make_objective("asd", opts, f.schedule);
  auto vsd = make_objective("vsd", opts, f.schedule);
  auto b = batch_of(f);
  auto [va, ga] = critic(*asd, f, b);
  auto [vv, gv] = critic(*vsd, f, b);
  EXPECT_NEAR(va, vv, 1e-7);
  for (size_t i = 0; i < ga.size(); ++i) EXPECT_LT(max_abs_diff(ga[i], gv[i]), 1e-7);
}

TEST(Objective, AsdDiscriminatorLossMatchesEquations5And6) {
  Fixture f;
  auto b = batch_of(f);
  torch::NoGradGuard ng;
  auto xg = f.noisy(b.x0, b.noise), xr = f.noisy(b.real_x0, b.real_noise);
  auto ephi_g = f.fake->eps(xg, b.noise.t, b.cond), ey_g = f.teacher->eps(xg, b.noise.t, b.cond);
  auto ephi_r = f.fake->eps(xr, b.real_noise.t, b.cond), ey_r = f.teacher->eps(xr, b.real_noise.t, b.cond);
  auto msq = [](const torch::Tensor& a, const torch::Tensor& c) { return (a - c).pow(2).mean().item<double>(); };
  for (bool real : {false, true}) {
    ObjectiveOptions o = guided();
    o.gamma = -0.5;
    o.eta = 0.5;
    o.asd_real = real;
    auto asd = make_objective("asd", o, f.schedule);
    double expect = msq(ephi_g, b.noise.eps) + o.gamma * msq(ey_g, ephi_g);
    if (real) expect += -msq(ephi_r, b.real_noise.eps) + o.eta * msq(ey_r, ephi_r);
    EXPECT_NEAR(asd->critic_loss(b, f.models()).item<double>(), expect, 1e-6) << "real=" << real;
  }
}

// DMD2's critic update: the fake score's denoising loss plus disc_weight times the discriminator's
// logistic loss (DMD2: 1e-2, since its head reads the fake score's encoder).
TEST(Objective, Dmd2CriticLossWeightsTheDiscriminatorLoss) {
  Fixture f;
  auto b = batch_of(f);
  torch::NoGradGuard ng;
  const double dsm = (f.fake->eps(f.noisy(b.x0, b.noise), b.noise.t, b.cond) - b.noise.eps).pow(2).mean().item<double>();
  const double d = (torch::nn::functional::softplus(-f.disc->logit(f.noisy(b.real_x0, b.real_noise), b.real_noise.t, b.real_cond)).mean() +
                    torch::nn::functional::softplus(f.disc->logit(f.noisy(b.x0, b.noise), b.noise.t, b.cond)).mean())
                       .item<double>();
  ASSERT_GT(d, 0.1);
  for (double w : {1.0, 1e-2, 0.0}) {
    ObjectiveOptions o = guided();
    o.gan_weight = 3e-3;
    o.disc_weight = w;
    auto dmd2 = make_objective("dmd2", o, f.schedule);
    EXPECT_NEAR(dmd2->critic_loss(b, f.models()).item<double>(), dsm + w * d, 1e-6 * (dsm + d)) << "disc_weight " << w;
  }
}

// The GAN critic's loss is the logistic loss of the discriminator, and it reports how well the
// discriminator separates the batch: mean logits on real and generated samples, and the fraction of
// both classified correctly (logit > 0 on real, < 0 on generated).
TEST(Objective, GanCriticLossReportsTheDiscriminatorsSeparation) {
  Fixture f;
  auto b = batch_of(f);
  auto gan = make_objective("gan", ObjectiveOptions{}, f.schedule);
  const double loss = gan->critic_loss(b, f.models()).item<double>();
  torch::NoGradGuard ng;
  auto lr = f.disc->logit(f.noisy(b.real_x0, b.real_noise), b.real_noise.t, b.real_cond);
  auto lf = f.disc->logit(f.noisy(b.x0, b.noise), b.noise.t, b.cond);
  EXPECT_NEAR(loss, gan_discriminator_loss(lr, lf).item<double>(), 1e-6);
  const auto& s = gan->stats();
  EXPECT_NEAR(s.at("logit_real"), lr.mean().item<double>(), 1e-6);
  EXPECT_NEAR(s.at("logit_fake"), lf.mean().item<double>(), 1e-6);
  const double right = (lr > 0).sum().item<double>() + (lf < 0).sum().item<double>();
  EXPECT_NEAR(s.at("disc_accuracy"), right / double(lr.size(0) + lf.size(0)), 1e-6);
  EXPECT_GT(right, 0);  // the check above is not 0 == 0
  EXPECT_LT(right, double(lr.size(0) + lf.size(0)));
  EXPECT_EQ(s.count("r1"), 0u);
}

// The approximate R1 penalty adds r1_weight * mean (l(x_t) - l(x_t + r1_sigma n))^2 on the real
// samples, n the batch's real_perturbation; a batch without one is refused, not penalised with zeros.
TEST(Objective, GanCriticLossAddsTheApproximateR1Penalty) {
  Fixture f;
  auto b = batch_of(f);
  b.real_perturbation = Rng(3).randn(b.real_x0.sizes());
  ObjectiveOptions o;
  o.r1_weight = 2.5;
  o.r1_sigma = 0.3;
  auto plain = make_objective("gan", ObjectiveOptions{}, f.schedule);
  auto r1 = make_objective("gan", o, f.schedule);
  const double with = r1->critic_loss(b, f.models()).item<double>();
  const double without = plain->critic_loss(b, f.models()).item<double>();
  torch::NoGradGuard ng;
  auto xr = f.noisy(b.real_x0, b.real_noise);
  const double pen = (f.disc->logit(xr, b.real_noise.t, b.real_cond) -
                      f.disc->logit(xr + 0.3 * b.real_perturbation, b.real_noise.t, b.real_cond))
                         .pow(2)
                         .mean()
                         .item<double>();
  ASSERT_GT(pen, 1e-6);
  EXPECT_NEAR(with, without + 2.5 * pen, 1e-6);
  EXPECT_NEAR(r1->stats().at("r1"), pen, 1e-7);
  b.real_perturbation = torch::Tensor();
  EXPECT_THROW(r1->critic_loss(b, f.models()), Error);
}

// The discriminator's logistic loss makes its logit an estimate of log(p_real / p_fake): train a
// small one on two 1-D Gaussians at t ~ 0 and compare with the exact log-ratio.
TEST(Objective, TrainedDiscriminatorLogitApproximatesLogDensityRatio) {
  torch::manual_seed(0);
  MlpOptions o;
  o.dim = 1;
  o.hidden = 32;
  o.blocks = 1;
  MlpDiscriminator d(o);
  torch::optim::Adam opt(d->parameters(), 3e-3);
  Rng rng(5);
  auto t = torch::full({512}, 0.001);
  for (int i = 0; i < 600; ++i) {
    auto real = rng.randn({512, 1}), fake = rng.randn({512, 1}) + 1.0;
    auto loss = gan_discriminator_loss(d->logit(real, t, {}), d->logit(fake, t, {}));
    opt.zero_grad();
    loss.backward();
    opt.step();
  }
  torch::NoGradGuard ng;
  auto x = torch::linspace(-1.5, 2.5, 9).unsqueeze(1);
  auto exact = 0.5 - x.squeeze(1);  // log N(x;0,1) - log N(x;1,1)
  EXPECT_LT(max_abs_diff(d->logit(x, torch::full({9}, 0.001), {}), exact), 0.3);
}

TEST(Objective, UnknownNameListsKnownOnes) {
  try {
    make_objective("vds", ObjectiveOptions{}, Schedule());
    FAIL() << "no throw";
  } catch (const ConfigError& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("vds"), std::string::npos);
    EXPECT_NE(msg.find("softened_rkl"), std::string::npos);
  }
  const ObjectiveOptions no_gan;
  EXPECT_THROW(make_objective("dmd2", no_gan, Schedule()), ConfigError);  // needs gan_weight
}

}  // namespace
}  // namespace retort
