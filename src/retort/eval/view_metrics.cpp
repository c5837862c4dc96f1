#include "retort/eval/view_metrics.h"

#include <fmt/format.h>
#include <fmt/ranges.h>  // fmt::join ({fmt} 11 moved it here)

#include <cmath>

#include "retort/core/error.h"
#include "retort/models/classifier.h"
#include "retort/models/classifier.h"

namespace retort {

namespace {

void check_pair(const torch::Tensor& a, const torch::Tensor& b, const char* what) {
  if (a.dim() != 4 || !a.sizes().equals(b.sizes()))
    throw Error(fmt::format("{}: expected two [N,C,H,W] batches of one shape, got [{}] and [{}]", what,
                            fmt::join(a.sizes(), ","), fmt::join(b.sizes(), ",")));
}

torch::Tensor unit(const torch::Tensor& x) { return x.to(torch::kFloat64).clamp(0, 1); }

// Depthwise valid convolution with the separable kernel k (1-D, odd length).
torch::Tensor filter(const torch::Tensor& x, const torch::Tensor& k) {
  const int64_t C = x.size(1), n = k.size(0);
  auto kh = k.reshape({1, 1, n, 1}).expand({C, 1, n, 1}).contiguous();
  auto kw = k.reshape({1, 1, 1, n}).expand({C, 1, 1, n}).contiguous();
  namespace F = torch::nn::functional;
  auto y = F::conv2d(x, kh, F::Conv2dFuncOptions().groups(C));
  return F::conv2d(y, kw, F::Conv2dFuncOptions().groups(C));
}

}  // namespace

torch::Tensor psnr(const torch::Tensor& images, const torch::Tensor& reference) {
  check_pair(images, reference, "psnr");
  auto mse = (unit(images) - unit(reference)).pow(2).flatten(1).mean(1);
  return -10.0 * torch::log10(mse.clamp_min(1e-10));
}

torch::Tensor masked_psnr(const torch::Tensor& images, const torch::Tensor& reference, const torch::Tensor& mask) {
  check_pair(images, reference, "masked_psnr");
  auto m = mask.to(torch::kFloat64);
  if (m.dim() == 3) m = m.unsqueeze(1);
  if (m.dim() != 4 || m.size(0) != images.size(0) || m.size(1) != 1 || m.size(2) != images.size(2) ||
      m.size(3) != images.size(3))
    throw Error(fmt::format("masked_psnr: mask [{}] does not match images [{}]", fmt::join(mask.sizes(), ","),
                            fmt::join(images.sizes(), ",")));
  m = (m != 0).to(torch::kFloat64).expand_as(images.to(torch::kFloat64));
  auto se = ((unit(images) - unit(reference)).pow(2) * m).flatten(1).sum(1);
  auto count = m.flatten(1).sum(1);
  auto mse = se / count;  // 0/0 = NaN for an empty mask, as documented
  return -10.0 * torch::log10(mse.clamp_min(1e-10));
}

torch::Tensor ssim(const torch::Tensor& images, const torch::Tensor& reference) {
  check_pair(images, reference, "ssim");
  constexpr double sigma = 1.5, truncate = 3.5;
  const int64_t radius = int64_t(truncate * sigma + 0.5);  // 5: an 11x11 window, as scipy's gaussian_filter
  if (images.size(2) < 2 * radius + 1 || images.size(3) < 2 * radius + 1)
    throw Error(fmt::format("ssim: images must be at least {0}x{0}, got {1}x{2}", 2 * radius + 1, images.size(2),
                            images.size(3)));
  auto x = torch::arange(-radius, radius + 1, torch::kFloat64);
  auto k = torch::exp(-0.5 * x * x / (sigma * sigma));
  k = k / k.sum();
  auto a = unit(images), b = unit(reference);
  auto mu_a = filter(a, k), mu_b = filter(b, k);
  auto var_a = filter(a * a, k) - mu_a * mu_a, var_b = filter(b * b, k) - mu_b * mu_b;
  auto cov = filter(a * b, k) - mu_a * mu_b;
  constexpr double c1 = 0.01 * 0.01, c2 = 0.03 * 0.03;
  auto map = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a * mu_a + mu_b * mu_b + c1) * (var_a + var_b + c2));
  return map.flatten(1).mean(1);
}

torch::Tensor feature_distance(ClassifierImpl& net, const torch::Tensor& images, const torch::Tensor& reference) {
  check_pair(images, reference, "feature_distance");
  torch::NoGradGuard ng;
  net.eval();
  auto device = net.parameters().front().device();
  auto to_net = [&](const torch::Tensor& x) { return x.to(device, torch::kFloat32).clamp(0, 1) * 2 - 1; };
  auto fa = net.conv_features(to_net(images)), fb = net.conv_features(to_net(reference));
  auto d = torch::zeros({images.size(0)}, torch::dtype(torch::kFloat64).device(device));
  for (size_t l = 0; l < fa.size(); ++l) {
    auto unit_a = fa[l] / (fa[l].pow(2).sum(1, true).sqrt() + 1e-10);  // LPIPS's normalize_tensor
    auto unit_b = fb[l] / (fb[l].pow(2).sum(1, true).sqrt() + 1e-10);
    d = d + (unit_a - unit_b).pow(2).sum(1).flatten(1).mean(1).to(torch::kFloat64);
  }
  return d.cpu();
}


}  // namespace retort
