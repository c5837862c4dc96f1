#include "retort/dist/batch_norm.h"

#include "retort/dist/world.h"

namespace retort {

torch::Tensor batch_norm_over_ranks(torch::nn::BatchNorm2dImpl& bn, const torch::Tensor& x) {
  if (!bn.is_training() || !world().distributed()) return bn.forward(x);
  const auto& o = bn.options;
  const int64_t C = x.size(1);
  // Per-channel count, sum and sum of squares over the global batch, in float64 so that
  // E[x²] − E[x]² does not cancel away the variance.
  auto x64 = x.to(torch::kFloat64);
  auto count = torch::full({1}, double(x.numel() / C), x64.options());
  auto stats = sum_over_ranks(torch::cat({x64.sum({0, 2, 3}), x64.pow(2).sum({0, 2, 3}), count}));
  const double n = stats[2 * C].item<double>();
  auto mean = stats.slice(0, 0, C) / n;
  auto var = (stats.slice(0, C, 2 * C) / n - mean.pow(2)).clamp_min(0);  // biased, as BatchNorm normalises
  auto invstd = (var + o.eps()).rsqrt();
  auto shape = std::vector<int64_t>{1, C, 1, 1};
  auto y = (x - mean.to(x.scalar_type()).view(shape)) * invstd.to(x.scalar_type()).view(shape);
  if (o.affine()) y = y * bn.weight.view(shape) + bn.bias.view(shape);
  if (o.track_running_stats()) {
    torch::NoGradGuard no_grad;
    const double m = o.momentum().value_or(0.1);
    bn.running_mean.mul_(1 - m).add_(mean.detach().to(bn.running_mean.scalar_type()), m);
    bn.running_var.mul_(1 - m).add_((var.detach() * (n / std::max(1.0, n - 1))).to(bn.running_var.scalar_type()), m);
    bn.num_batches_tracked.add_(1);
  }
  return y;
}

}  // namespace retort
