// Novel-view metrics: PSNR (also over masked pixels), SSIM (checked against scikit-image by
// cli.ssim_skimage) and the feature distance on the world evaluator's convolution stages.
#include <gtest/gtest.h>

#include <cmath>

#include "retort/eval/view_metrics.h"
#include "retort/models/classifier.h"
#include "retort/render/world.h"
#include "test_util.h"

namespace retort {
namespace {

// A few world objects at 32 px in [0,1].
torch::Tensor world_images() {
  std::mt19937_64 rng(3);
  std::vector<torch::Tensor> out;
  for (int i = 0; i < 6; ++i) {
    Object o{Shape(i % kNumShapes), Colour((i * 3) % kNumColours), 1.0};
    auto cam = sample_camera(CameraRanges{}, rng);
    out.push_back(render_object(o, cam, 32).image);
  }
  return torch::stack(out);
}

torch::Tensor blur(const torch::Tensor& x, double sigma) {
  const int64_t r = int64_t(std::ceil(3 * sigma));
  auto t = torch::arange(-r, r + 1, torch::kFloat32);
  auto k = torch::exp(-0.5 * t * t / (sigma * sigma));
  k = k / k.sum();
  const int64_t C = x.size(1);
  namespace F = torch::nn::functional;
  auto p = F::pad(x, F::PadFuncOptions({r, r, r, r}).mode(torch::kReplicate));
  p = F::conv2d(p, k.reshape({1, 1, 1, -1}).expand({C, 1, 1, 2 * r + 1}), F::Conv2dFuncOptions().groups(C));
  return F::conv2d(p, k.reshape({1, 1, -1, 1}).expand({C, 1, 2 * r + 1, 1}), F::Conv2dFuncOptions().groups(C));
}

// Shifted right and down by s pixels, the border repeated.
torch::Tensor shifted(const torch::Tensor& x, int64_t s) {
  namespace F = torch::nn::functional;
  auto p = F::pad(x, F::PadFuncOptions({s, 0, s, 0}).mode(torch::kReplicate));
  return p.slice(2, 0, x.size(2)).slice(3, 0, x.size(3));
}

TEST(ViewMetrics, PsnrAndSsimBasics) {
  auto x = world_images();
  EXPECT_EQ(psnr(x, x).min().item<double>(), 100.0);
  EXPECT_NEAR(ssim(x, x).min().item<double>(), 1.0, 1e-12);
  auto y = (x + 0.1).clamp(0, 1);
  auto mse = (x.to(torch::kFloat64) - y.to(torch::kFloat64)).pow(2).flatten(1).mean(1);
  EXPECT_LT(test::max_abs_diff(psnr(y, x), -10 * torch::log10(mse)), 1e-9);
  // Masked: the error only inside the mask; outside it the images agree.
  auto mask = torch::zeros({6, 1, 32, 32});
  mask.slice(2, 0, 16).fill_(1);
  auto z = x.clone();
  z.slice(2, 0, 16).add_(0.2);
  z = z.clamp(0, 1);
  auto inside = masked_psnr(z, x, mask), outside = masked_psnr(z, x, 1 - mask);
  EXPECT_LT(inside.max().item<double>(), 40.0);
  EXPECT_EQ(outside.min().item<double>(), 100.0);
  EXPECT_TRUE(std::isnan(masked_psnr(z, x, torch::zeros({6, 1, 32, 32}))[0].item<double>()));
  EXPECT_NE(test::error_of<Error>([&] { ssim(torch::rand({1, 3, 8, 8}), torch::rand({1, 3, 8, 8})); }).find("at least 11x11"),
            std::string::npos);
  EXPECT_NE(test::error_of<Error>([&] { psnr(x, x.slice(0, 1)); }).find("one shape"), std::string::npos);
}

// The feature distance rises with every degradation's strength (issue 19: blur, noise and shift).
TEST(ViewMetrics, FeatureDistanceRisesWithBlurNoiseAndShift) {
  auto net = load_classifier(std::filesystem::path(RETORT_SOURCE_DIR) / "weights/world-evaluator.safetensors");
  auto x = world_images();
  EXPECT_LT(feature_distance(*net, x, x).max().item<double>(), 1e-12);
  torch::manual_seed(0);
  auto noise = torch::randn_like(x);
  std::map<std::string, std::vector<torch::Tensor>> levels{
      {"blur", {blur(x, 0.5), blur(x, 1.0), blur(x, 2.0)}},
      {"noise", {(x + 0.03 * noise).clamp(0, 1), (x + 0.1 * noise).clamp(0, 1), (x + 0.3 * noise).clamp(0, 1)}},
      {"shift", {shifted(x, 1), shifted(x, 2), shifted(x, 4)}}};
  for (const auto& [name, ys] : levels) {
    double last = 0;
    for (size_t i = 0; i < ys.size(); ++i) {
      const double d = feature_distance(*net, ys[i], x).mean().item<double>();
      EXPECT_GT(d, last) << name << " level " << i;
      last = d;
    }
  }
}

}  // namespace
}  // namespace retort
