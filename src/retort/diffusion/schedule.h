// Variance-preserving noise schedules: x_t = alpha_t x0 + sigma_t eps, alpha_t^2 + sigma_t^2 = 1.
//
// Time is a float tensor t in [0, 1]. A discrete schedule with T steps puts its step index k
// (0-based, as in DDPM code) at t = (k + 1) / T, so k = 999, 749, 499, 249 are t = 1, .75, .5, .25;
// between grid points log(alpha_bar) is interpolated linearly (t = 0 is clean data). A continuous
// schedule uses the closed form that the discrete one approaches as T grows.
#pragma once
#include <string>
#include <vector>

#include <torch/torch.h>

#include "retort/core/options.h"

namespace retort {

enum class ScheduleKind { Linear, ScaledLinear, Cosine };

struct ScheduleOptions {
  ScheduleKind kind = ScheduleKind::Linear;
  int64_t steps = 1000;     // T of the discrete schedule (also scales the continuous closed forms)
  bool continuous = false;  // closed form in t instead of the T-step table
};

ScheduleKind parse_schedule_kind(const std::string& name);  // throws ConfigError listing the kinds
std::vector<std::string> schedule_kind_names();
// The [schedule] keys: kind, steps, continuous (defaults from the struct read into).
const OptionTable<ScheduleOptions>& schedule_option_table();

class Schedule {
 public:
  explicit Schedule(ScheduleOptions opts = {});

  torch::Tensor alpha_bar(const torch::Tensor& t) const;
  torch::Tensor alpha(const torch::Tensor& t) const { return alpha_bar(t).sqrt(); }
  torch::Tensor sigma(const torch::Tensor& t) const { return (1 - alpha_bar(t)).clamp_min(0).sqrt(); }
  // Rounds t up to the grid of a discrete schedule (identity for continuous ones).
  torch::Tensor snap(const torch::Tensor& t) const;
  // t of discrete step index k.
  double time_of_step(int64_t k) const { return double(k + 1) / double(opts_.steps); }
  // The T-step table of alpha_bar (float64), independent of `continuous`.
  const torch::Tensor& discrete_alpha_bar() const { return abar_; }
  const ScheduleOptions& options() const { return opts_; }

 private:
  torch::Tensor log_alpha_bar_continuous(const torch::Tensor& t) const;
  ScheduleOptions opts_;
  torch::Tensor abar_;       // [T] float64
  torch::Tensor log_table_;  // [T + 1] float64: log alpha_bar at t = j / T, j = 0..T
};

// Reshapes a per-sample [B] tensor so it broadcasts against x of shape [B, ...].
torch::Tensor per_sample(const torch::Tensor& v, const torch::Tensor& like);

}  // namespace retort
