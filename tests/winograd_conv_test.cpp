// The Winograd 3x3 convolution (models/winograd_conv.h) against LibTorch's own convolution: the
// output and the gradients to input, weight and bias agree to Winograd's rounding; shapes it does
// not take run LibTorch's path unchanged; runtime.conv switches the path.
#include <gtest/gtest.h>

#include "conv_test_util.h"
#include "retort/core/error.h"
#include "retort/core/runtime.h"
#include "retort/models/winograd_conv.h"

namespace retort {
namespace {

struct Result {
  torch::Tensor y, dx, dw, db;
};

Result run(torch::nn::Conv2dImpl& conv, const torch::Tensor& x0, const torch::Tensor& g) {
  auto x = x0.clone().requires_grad_(true);
  for (auto& p : conv.parameters()) p.mutable_grad() = torch::Tensor();
  auto y = conv3x3(conv, x);
  (y * g).sum().backward();
  return {y.detach(), x.grad(), conv.weight.grad().clone(),
          conv.bias.defined() ? conv.bias.grad().clone() : torch::Tensor()};
}

// Largest difference relative to the reference's largest entry.
double rel(const torch::Tensor& a, const torch::Tensor& ref) {
  return (a - ref).abs().max().item<double>() / ref.abs().max().item<double>();
}

TEST(WinogradConv, MatchesLibTorchForwardAndGradients) {
  if (!winograd_available()) GTEST_SKIP() << "built without oneDNN";
  torch::manual_seed(0);
  // Up to 16 px oneDNN computes the weights' gradient too, above it LibTorch's direct kernel.
  for (auto [n, c, k, hw, bias] : {std::tuple{2, 16, 32, 16, true}, {1, 32, 16, 8, false}, {3, 16, 16, 20, true}}) {
    torch::nn::Conv2d conv(torch::nn::Conv2dOptions(c, k, 3).padding(1).bias(bias));
    auto x = torch::randn({n, c, hw, hw}), g = torch::randn({n, k, hw, hw});
    Result direct, wino;
    {
      test::ScopedConv a("direct");
      direct = run(*conv, x, g);
    }
    {
      test::ScopedConv a("winograd");
      wino = run(*conv, x, g);
    }
    SCOPED_TRACE(::testing::Message() << n << "x" << c << "->" << k << " at " << hw << " px");
    // Winograd rounds differently from the direct kernel, so equal to ~1e-6, not bit for bit ...
    EXPECT_LT(rel(wino.y, direct.y), 1e-4);
    EXPECT_LT(rel(wino.dx, direct.dx), 1e-4);
    EXPECT_LT(rel(wino.dw, direct.dw), 1e-4);
    if (bias) EXPECT_LT(rel(wino.db, direct.db), 1e-4);
    // ... and it is a different computation: an identical output would mean Winograd never ran.
    EXPECT_GT((wino.y - direct.y).abs().max().item<double>(), 0.0);
  }
}

TEST(WinogradConv, InferenceModeAndFallbacks) {
  if (!winograd_available()) GTEST_SKIP() << "built without oneDNN";
  test::ScopedConv a("winograd");
  torch::manual_seed(1);
  torch::nn::Conv2d conv(torch::nn::Conv2dOptions(16, 16, 3).padding(1));
  auto x = torch::randn({2, 16, 10, 10});
  torch::Tensor graph_free;
  {
    c10::InferenceMode frozen;
    graph_free = conv3x3(*conv, x);
  }
  EXPECT_TRUE(torch::allclose(graph_free, conv->forward(x), 1e-4, 1e-5));
  // Shapes the Winograd kernels do not take are LibTorch's convolution, bit for bit.
  torch::nn::Conv2d strided(torch::nn::Conv2dOptions(16, 16, 3).padding(1).stride(2));
  torch::nn::Conv2d one(torch::nn::Conv2dOptions(16, 16, 1));
  torch::nn::Conv2d rgb(torch::nn::Conv2dOptions(3, 16, 3).padding(1));  // under 16 channels: not worth it
  auto image = torch::randn({2, 3, 10, 10});
  EXPECT_TRUE(torch::equal(conv3x3(*rgb, image), rgb->forward(image)));
  EXPECT_TRUE(torch::equal(conv3x3(*strided, x), strided->forward(x)));
  EXPECT_TRUE(torch::equal(conv3x3(*one, x), one->forward(x)));
  EXPECT_TRUE(torch::equal(conv3x3(*conv, x.to(torch::kFloat64).to(torch::kFloat32)), conv3x3(*conv, x)));
  auto d = x.to(torch::kFloat64);
  conv->to(torch::kFloat64);
  EXPECT_TRUE(torch::equal(conv3x3(*conv, d), conv->forward(d)));
}

TEST(WinogradConv, RuntimeKeyChoosesThePath) {
  {
    test::ScopedConv a("direct");
    EXPECT_EQ(cpu_conv_algorithm(), "direct");
    torch::nn::Conv2d conv(torch::nn::Conv2dOptions(16, 16, 3).padding(1));
    auto x = torch::randn({1, 16, 8, 8});
    EXPECT_TRUE(torch::equal(conv3x3(*conv, x), conv->forward(x)));
  }
  EXPECT_EQ(cpu_conv_algorithm(), winograd_available() ? "winograd" : "direct");
  if (!winograd_available()) EXPECT_THROW(test::ScopedConv("winograd"), ConfigError);
}

}  // namespace
}  // namespace retort
