#include "retort/bench/gmm_ratio.h"

#include <fmt/format.h>

#include "retort/core/rng.h"
#include "retort/distill/gan.h"
#include "retort/models/mlp.h"

namespace retort {

const OptionTable<RatioCheckOptions>& ratio_check_option_table() {
  static const auto table = [] {
    using R = RatioCheckOptions;
    OptionTable<R> t;
    t.integer("steps", &R::steps, 0, 100'000'000, "discriminator updates against the known generator; 0 = no check")
        .integer("batch", &R::batch, 1, 1'000'000, "real and generated samples per update")
        .number("lr", &R::lr, 1e-10, 10, "discriminator AdamW learning rate")
        .integer("hidden", &R::hidden, 1, 65536, "discriminator MLP width")
        .integer("blocks", &R::blocks, 0, 64, "discriminator MLP residual blocks")
        .number("fake_std", &R::fake_std, 1e-6, 1e6, "the known generator N(0, fake_std² I)")
        .number("t_min", &R::t_min, 0, 1, "lowest training time")
        .number("t_max", &R::t_max, 0, 1, "highest training time")
        .numbers("times", &R::times, 0, 1, "times t at which r is scored")
        .integer("samples", &R::samples, 10, 10'000'000, "generated points scored per time")
        .check([](ConfigNode& n, const R& r) {
          if (r.t_min > r.t_max) n.fail("t_min", fmt::format("{} is above t_max = {}", r.t_min, r.t_max));
          if (r.times.empty()) n.fail("times", "give at least one time");
        });
    return t;
  }();
  return table;
}

namespace {

// x_t = alpha(t) x0 + sigma(t) eps.
torch::Tensor noised(const Schedule& schedule, const torch::Tensor& x0, const torch::Tensor& t, Rng& rng) {
  auto abar = schedule.alpha_bar(t).to(x0.dtype()).unsqueeze(1);
  return abar.sqrt() * x0 + (1 - abar).sqrt() * rng.randn(x0.sizes(), x0.device());
}

std::vector<RatioAtTime> score(MlpDiscriminatorImpl& disc, const MixtureTeacher& real, const MixtureTeacher& fake,
                               const Schedule& schedule, const RatioCheckOptions& o, Rng& rng,
                               const torch::Device& device) {
  torch::NoGradGuard no_grad;
  const int64_t D = real.mixture().dim();
  std::vector<RatioAtTime> rows;
  for (double time : o.times) {
    auto t = torch::full({o.samples}, time, torch::TensorOptions().device(device));
    auto xt = noised(schedule, o.fake_std * rng.randn({o.samples, D}, device), t, rng);
    const auto cond = Cond::null(o.samples, device);
    auto log_r = (real.log_prob(xt, t, cond) - fake.log_prob(xt, t, cond)).to(torch::kFloat64);
    auto log_r_hat = disc.logit(xt, t, cond).to(torch::kFloat64);
    auto rel = ((log_r_hat - log_r).exp() - 1).abs();  // |r̂ − r| / r
    auto weight = (1 / (log_r.exp() + 1) - 1 / (log_r_hat.exp() + 1)).abs();
    rows.push_back({time, rel.median().item<double>(), (log_r_hat - log_r).abs().median().item<double>(),
                    weight.median().item<double>(), log_r.median().item<double>()});
  }
  return rows;
}

}  // namespace

std::vector<RatioAtTime> check_density_ratio(const GaussianMixture& target, const Schedule& schedule,
                                             const RatioCheckOptions& o, uint64_t seed, const torch::Device& device,
                                             std::vector<RatioAtTime>* untrained) {
  const int64_t D = target.dim();
  MixtureComponent gaussian;
  gaussian.mean.assign(size_t(D), 0.0);
  gaussian.cov.assign(size_t(D), std::vector<double>(size_t(D), 0.0));
  for (int64_t i = 0; i < D; ++i) gaussian.cov[size_t(i)][size_t(i)] = o.fake_std * o.fake_std;
  MixtureTeacher real(target.to(device), schedule), fake(GaussianMixture({gaussian}).to(device), schedule);
  Rng rng(seed);
  torch::manual_seed(seed);
  MlpOptions mo;
  mo.dim = D;
  mo.hidden = o.hidden;
  mo.blocks = o.blocks;
  MlpDiscriminator disc(mo);
  disc->to(device);
  if (untrained) {
    Rng probe(seed + 1);
    *untrained = score(*disc, real, fake, schedule, o, probe, device);
  }
  torch::optim::AdamW opt(disc->parameters(), torch::optim::AdamWOptions(o.lr).weight_decay(0));
  ObjectiveOptions loss_opts;
  std::map<std::string, double> stats;
  for (int64_t step = 0; step < o.steps; ++step) {
    CriticBatch b;
    b.real_x0 = real.mixture().sample(o.batch, rng);  // the target, already on the device
    b.x0 = o.fake_std * rng.randn({o.batch, D}, device);
    b.cond = b.real_cond = Cond::null(o.batch, device);
    b.noise.t = o.t_min + (o.t_max - o.t_min) * rng.rand({o.batch}, device);
    b.real_noise.t = o.t_min + (o.t_max - o.t_min) * rng.rand({o.batch}, device);
    auto loss = discriminator_loss(*disc, b, noised(schedule, b.real_x0, b.real_noise.t, rng),
                                   noised(schedule, b.x0, b.noise.t, rng), loss_opts, stats);
    opt.zero_grad();
    loss.backward();
    opt.step();
  }
  Rng probe(seed + 1);
  return score(*disc, real, fake, schedule, o, probe, device);
}

nlohmann::json ratio_json(const std::vector<RatioAtTime>& rows) {
  auto j = nlohmann::json::array();
  for (const auto& r : rows)
    j.push_back({{"t", r.t}, {"median_rel_error_r", r.rel_error_r}, {"median_abs_error_log_r", r.abs_error_log_r},
                 {"median_abs_error_weight", r.abs_error_weight}, {"median_true_log_r", r.true_log_r}});
  return j;
}

std::string ratio_markdown(const std::vector<RatioAtTime>& rows, const std::vector<RatioAtTime>& untrained) {
  std::string md =
      "| t | median true log r | median \\|r̂ − r\\| / r | median \\|log r̂ − log r\\| | median \\|1/(r̂+1) − 1/(r+1)\\| | "
      "untrained: \\|log r̂ − log r\\| |\n|---|---|---|---|---|---|\n";
  for (size_t i = 0; i < rows.size(); ++i) {
    const auto& r = rows[i];
    md += fmt::format("| {:.2f} | {:.3f} | {:.3f} | {:.3f} | {:.4f} | {} |\n", r.t, r.true_log_r, r.rel_error_r,
                      r.abs_error_log_r, r.abs_error_weight,
                      i < untrained.size() ? fmt::format("{:.3f}", untrained[i].abs_error_log_r) : "");
  }
  return md;
}

}  // namespace retort
