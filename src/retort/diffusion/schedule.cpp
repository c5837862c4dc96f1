#include "retort/diffusion/schedule.h"

#include <fmt/format.h>
#include <fmt/ranges.h>  // fmt::join ({fmt} 11 moved it here)

#include <cmath>

#include "retort/core/error.h"

namespace retort {
namespace {
constexpr double kCosineOffset = 0.008;  // s of Nichol & Dhariwal
constexpr double kMaxBeta = 0.999;
constexpr double kLinearBeta0 = 1e-4, kLinearBeta1 = 2e-2;
constexpr double kScaledBeta0 = 0.00085, kScaledBeta1 = 0.012;

double cosine_f(double u) {
  double c = std::cos((u + kCosineOffset) / (1 + kCosineOffset) * M_PI / 2);
  return c * c;
}
}  // namespace

std::vector<std::string> schedule_kind_names() { return {"linear", "scaled_linear", "cosine"}; }

const OptionTable<ScheduleOptions>& schedule_option_table() {
  static const auto table = [] {
    using O = ScheduleOptions;
    OptionTable<O> t;
    t.named("kind", &O::kind, schedule_kind_names(),
            "linear (DDPM beta 1e-4..2e-2), scaled_linear (Stable Diffusion), cosine")
        .integer("steps", &O::steps, 2, 100000, "T, the steps of the discrete schedule")
        .flag("continuous", &O::continuous, "closed-form alpha(t) instead of the T-step table");
    return t;
  }();
  return table;
}

ScheduleKind parse_schedule_kind(const std::string& name) {
  if (name == "linear") return ScheduleKind::Linear;
  if (name == "scaled_linear") return ScheduleKind::ScaledLinear;
  if (name == "cosine") return ScheduleKind::Cosine;
  throw ConfigError(fmt::format("unknown schedule '{}'; known: {}", name,
                                fmt::join(schedule_kind_names(), ", ")));
}

Schedule::Schedule(ScheduleOptions opts) : opts_(opts) {
  const int64_t T = opts_.steps;
  if (T < 2) throw ConfigError(fmt::format("schedule.steps = {} must be at least 2", T));
  auto f64 = torch::TensorOptions().dtype(torch::kFloat64);
  torch::Tensor betas;
  switch (opts_.kind) {
    case ScheduleKind::Linear:
      betas = torch::linspace(kLinearBeta0, kLinearBeta1, T, f64);
      break;
    case ScheduleKind::ScaledLinear:
      betas = torch::linspace(std::sqrt(kScaledBeta0), std::sqrt(kScaledBeta1), T, f64).pow(2);
      break;
    case ScheduleKind::Cosine: {
      std::vector<double> b(T);
      for (int64_t k = 0; k < T; ++k)
        b[k] = std::min(1 - cosine_f(double(k + 1) / T) / cosine_f(double(k) / T), kMaxBeta);
      betas = torch::tensor(b, f64);
      break;
    }
  }
  abar_ = torch::cumprod(1 - betas, 0);
  log_table_ = torch::cat({torch::zeros({1}, f64), abar_.log()});
}

torch::Tensor Schedule::log_alpha_bar_continuous(const torch::Tensor& t) const {
  const double T = double(opts_.steps);
  switch (opts_.kind) {
    case ScheduleKind::Linear:  // -T * integral of beta(s) ds, beta linear in s
      return -T * (kLinearBeta0 * t + 0.5 * (kLinearBeta1 - kLinearBeta0) * t * t);
    case ScheduleKind::ScaledLinear: {  // sqrt(beta) linear in s
      double a = std::sqrt(kScaledBeta0), b = std::sqrt(kScaledBeta1);
      return -T * (a * a * t + a * (b - a) * t * t + (b - a) * (b - a) * t * t * t / 3);
    }
    case ScheduleKind::Cosine: {
      auto c = torch::cos((t + kCosineOffset) / (1 + kCosineOffset) * (M_PI / 2));
      // Same floor as the clipped discrete schedule's last step, so alpha never reaches zero.
      double floor = std::log(abar_[opts_.steps - 1].item<double>());
      return (2 * c.abs().clamp_min(1e-20).log() - std::log(cosine_f(0))).clamp_min(floor);
    }
  }
  return {};
}

torch::Tensor Schedule::alpha_bar(const torch::Tensor& t) const {
  auto td = t.to(torch::kFloat64).clamp(0, 1);
  torch::Tensor log_abar;
  if (opts_.continuous) {
    log_abar = log_alpha_bar_continuous(td);
  } else {
    auto table = log_table_.to(t.device());
    auto u = td * double(opts_.steps);
    auto lo = u.floor().clamp(0, opts_.steps - 1);
    auto w = u - lo;
    auto lo_i = lo.to(torch::kLong);
    log_abar = table.index({lo_i}) * (1 - w) + table.index({lo_i + 1}) * w;
  }
  return log_abar.exp().to(t.scalar_type());
}

torch::Tensor Schedule::snap(const torch::Tensor& t) const {
  if (opts_.continuous) return t;
  const double T = double(opts_.steps);
  return ((t * T).ceil().clamp(1, T) / T).to(t.scalar_type());
}

torch::Tensor per_sample(const torch::Tensor& v, const torch::Tensor& like) {
  std::vector<int64_t> shape(like.dim(), 1);
  shape[0] = v.size(0);
  return v.reshape(shape);
}

}  // namespace retort
