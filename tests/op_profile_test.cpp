// bench-step --profile's op profile (self times per category from the ops' nesting, FLOPs)
// and the peak measurement (bench/op_profile.h).
#include <gtest/gtest.h>
#include <map>
#include <torch/torch.h>

#include "conv_test_util.h"
#include "retort/bench/op_profile.h"
#include "retort/core/runtime.h"
#include "retort/models/small_attention.h"
#include "retort/models/winograd_conv.h"
#include "retort/models/unet.h"
#include "test_util.h"

namespace retort {
namespace {

TEST(OpProfile, CategoriesByName) {
  EXPECT_EQ(op_category("aten::conv2d"), "convolution");
  EXPECT_EQ(op_category("aten::mkldnn_convolution"), "convolution");
  EXPECT_EQ(op_category("aten::convolution_backward"), "convolution");
  EXPECT_EQ(op_category("aten::addmm"), "gemm");
  EXPECT_EQ(op_category("aten::bmm"), "gemm");
  EXPECT_EQ(op_category("aten::_softmax_backward_data"), "attention");
  EXPECT_EQ(op_category("aten::native_group_norm_backward"), "normalisation");
  EXPECT_EQ(op_category("aten::silu_backward"), "elementwise");
  EXPECT_EQ(op_category("aten::add_"), "elementwise");
  EXPECT_EQ(op_category("aten::_to_copy"), "copy/alloc");
  EXPECT_EQ(op_category("aten::empty_strided"), "copy/alloc");
  EXPECT_EQ(op_category("aten::view"), "copy/alloc");
  EXPECT_EQ(op_category("ConvolutionBackward0"), "autograd");
  EXPECT_EQ(op_category("autograd::engine::evaluate_function: MmBackward0"), "autograd");
  EXPECT_EQ(op_category("torch::autograd::AccumulateGrad"), "autograd");
  EXPECT_EQ(op_category(kOptimizerScope), "optimizer");
  EXPECT_EQ(op_category("aten::randn"), "other");
  EXPECT_EQ(op_category("retort::hash_encode"), "hash grid");
  EXPECT_EQ(op_category("torch::autograd::CppNode<retort::(anonymous namespace)::HashEncode>"), "hash grid");
}

// A tiny training step: conv, matmul, add, backward, and an in-place update in the optimizer scope.
TEST(OpProfile, TinyStepSelfTimesAndFlops) {
  torch::manual_seed(0);
  const int64_t n = 2, cin = 3, cout = 4, hw = 8, m = 5, k = 6, p = 7;
  auto x = torch::randn({n, cin, hw, hw});
  auto w = torch::randn({cout, cin, 3, 3}, torch::requires_grad());
  auto a = torch::randn({m, k});
  auto b = torch::randn({k, p}, torch::requires_grad());
  auto step = [&] {
    // Stride, padding and dilation as pairs, as nn::Conv2d passes them: the profiler's FLOP counter
    // skips a conv2d called with single-element padding or dilation.
    auto y = torch::conv2d(x, w, {}, {1, 1}, {1, 1}, {1, 1});
    auto z = torch::matmul(a, b);
    auto loss = (y + 1).sum() + z.sum();
    loss.backward();
    RECORD_USER_SCOPE(kOptimizerScope);
    torch::NoGradGuard no_grad;
    w.mul_(0.99);
    b.mul_(0.99);
  };
  const int64_t rounds = 3;
  const auto prof = profile_ops(step, rounds);
  EXPECT_EQ(prof.rounds, rounds);
  EXPECT_TRUE(prof.has_backward);
  for (const char* c : {"convolution", "gemm", "elementwise", "copy/alloc", "optimizer", "autograd"})
    EXPECT_GT(prof.category_ms.at(c), 0) << c;
  double share_sum = 0;
  for (const auto& [c, ms] : prof.category_ms) {
    EXPECT_GE(ms, 0) << c;
    share_sum += ms / prof.wall_ms;
  }
  // Self times add up to the time in top-level ops, which is inside the wall time.
  EXPECT_NEAR(share_sum * prof.wall_ms, prof.top_level_ms, 1e-6 * prof.wall_ms + 1e-9);
  EXPECT_LE(share_sum, 1.0);
  EXPECT_LE(prof.top_level_ms, prof.wall_ms);
  ASSERT_FALSE(prof.ops.empty());
  for (size_t i = 1; i < prof.ops.size(); ++i) EXPECT_GE(prof.ops[i - 1].self_ms, prof.ops[i].self_ms);

  // The profiler's convention: 2 FLOPs per multiply-add for conv and GEMM, 1 per element for add/mul.
  const double conv = 2.0 * n * cout * cin * 3 * 3 * hw * hw;
  const double gemm = 2.0 * m * k * p;
  EXPECT_DOUBLE_EQ(prof.forward_flops_by_kind.at("convolution"), conv);
  EXPECT_DOUBLE_EQ(prof.forward_flops_by_kind.at("gemm"), gemm);
  // The optimizer's in-place mul_ is not counted; the backward's products are, apart: the conv's as
  // two products of its size (input and weight gradients, whether or not the input needs one), the
  // matmul's as MmBackward ran it (only b needs a gradient: one product).
  EXPECT_DOUBLE_EQ(prof.backward_flops_by_kind.at("convolution"), 2 * conv);
  EXPECT_DOUBLE_EQ(prof.backward_flops_by_kind.at("gemm"), gemm);
  EXPECT_DOUBLE_EQ(prof.flops_per_step(), prof.forward_flops() + 2 * conv + gemm);
  bool saw_backward_mm = false;
  for (const auto& f : prof.flop_events) saw_backward_mm = saw_backward_mm || (f.in_backward && f.name == "aten::mm");
  EXPECT_TRUE(saw_backward_mm);  // MmBackward's products are counted by the profiler but kept apart

  const auto j = op_profile_json(prof, 3);
  EXPECT_EQ(j["top"].size(), 3u);
  EXPECT_TRUE(j["categories"].contains("outside ops"));
  EXPECT_TRUE(j["categories"].contains("copy/alloc"));
}

// The timed rounds' RangeLog sees the ops, the nesting and the backward that the legacy profiler,
// which counts the FLOPs, sees: the same op names, categories and calls.
TEST(OpProfile, RangeLogRecordsTheOpsTheLegacyProfilerDoes) {
  torch::manual_seed(0);
  auto x = torch::randn({2, 3, 8, 8});
  auto w = torch::randn({4, 3, 3, 3}, torch::requires_grad());
  auto step = [&] {
    auto loss = torch::silu(torch::conv2d(x, w, {}, {1, 1}, {1, 1})).pow(2).sum();
    loss.backward();
    RECORD_USER_SCOPE(kOptimizerScope);
    torch::NoGradGuard no_grad;
    w.sub_(w.grad() * 0.1);
    w.grad().zero_();
  };
  step();
  OpRecorder recorder;
  auto calls = [](const OpProfile& p) {
    std::map<std::string, int64_t> c;
    for (const auto& s : p.ops) c[s.category + " " + s.name] = s.calls;
    return c;
  };
  recorder.begin(false);
  step();
  step();
  const auto logged = recorder.end(2);
  recorder.begin(true);
  step();
  step();
  const auto legacy = recorder.end(2);
  EXPECT_TRUE(logged.has_backward);
  EXPECT_EQ(calls(logged), calls(legacy));
  EXPECT_GT(calls(logged).count("optimizer aten::sub_"), 0u);
  EXPECT_GT(logged.top_level_ms, 0);
  EXPECT_LE(logged.top_level_ms, logged.wall_ms);
  EXPECT_DOUBLE_EQ(logged.flops_per_step(), 0);  // FLOPs come from the legacy round only
  EXPECT_GT(legacy.flops_per_step(), 0);
  // One recorder at a time: a second RangeLog while one records is refused.
  recorder.begin(false);
  OpRecorder other;
  EXPECT_THROW(other.begin(false), Error);
  recorder.end(1);
}

TEST(OpProfile, ForwardOnlyStepHasNoBackwardRule) {
  auto x = torch::randn({4, 4});
  const auto prof = profile_ops([&] { torch::mm(x, x); }, 2);
  EXPECT_FALSE(prof.has_backward);
  EXPECT_DOUBLE_EQ(prof.flops_per_step(), 2.0 * 4 * 4 * 4);
  EXPECT_DOUBLE_EQ(prof.backward_flops(), 0.0);
}

// The UNet's input conv against the analytic count 2 * N * Cout * Cin * 3 * 3 * H * W.
TEST(OpProfile, UNetInputConvFlopsMatchAnalyticCount) {
  UNetOptions o;
  o.channels = 3;
  o.resolution = 16;
  o.widths = {8, 16};
  o.time_dim = 16;
  o.num_classes = 3;
  o.groups = 4;
  o.heads = 2;
  UNet net(o);
  const int64_t n = 2;
  auto x = torch::randn({n, o.channels, o.resolution, o.resolution});
  auto t = torch::tensor({0.3f, 0.7f});
  auto c = Cond::classes(torch::tensor(std::vector<int64_t>{0, 1}));
  torch::NoGradGuard no_grad;
  const auto prof = profile_ops([&] { net->forward(x, t, c); }, 1);
  const FlopEvent* input_conv = nullptr;
  for (const auto& f : prof.flop_events)
    if (f.name == "aten::conv2d" && f.shapes.size() >= 2 && f.shapes[0].size() == 4 && f.shapes[0][1] == o.channels) {
      input_conv = &f;
      break;
    }
  ASSERT_NE(input_conv, nullptr);
  const auto& weight = input_conv->shapes[1];  // [Cout, Cin, 3, 3]
  ASSERT_EQ(weight.size(), 4u);
  EXPECT_EQ(weight[2], 3);
  EXPECT_DOUBLE_EQ(input_conv->flops, 2.0 * n * weight[0] * o.channels * 9 * o.resolution * o.resolution);
  EXPECT_GT(prof.forward_flops_by_kind.at("convolution"), input_conv->flops);  // the other layers too
}

// A Winograd convolution counts the direct one's FLOPs, forward and backward (whose weight
// gradient, above 16 px, it takes from LibTorch's convolution_backward: not counted twice).
TEST(OpProfile, WinogradConvCountsTheDirectConvsFlops) {
  if (!winograd_available()) GTEST_SKIP() << "built without oneDNN";
  torch::nn::Conv2d conv(torch::nn::Conv2dOptions(16, 16, 3).padding(1));
  for (int64_t px : {8, 32}) {
    auto x = torch::randn({2, 16, px, px}).requires_grad_(true);
    auto flops = [&](const std::string& algorithm) {
      test::ScopedConv scoped(algorithm);
      return profile_ops([&] { conv3x3(*conv, x).sum().backward(); }, 1);
    };
    const auto direct = flops("direct"), winograd = flops("winograd");
    const double forward = 2.0 * 2 * 16 * 16 * 9 * px * px;
    EXPECT_DOUBLE_EQ(direct.forward_flops_by_kind.at("convolution"), forward) << px;
    EXPECT_DOUBLE_EQ(winograd.forward_flops_by_kind.at("convolution"), forward) << px;
    EXPECT_DOUBLE_EQ(direct.backward_flops_by_kind.at("convolution"), 2 * forward) << px;
    EXPECT_DOUBLE_EQ(winograd.backward_flops_by_kind.at("convolution"), 2 * forward) << px;
  }
}

// The fused attention's products count as the bmm calls it replaces: 4 S K^2 d forward (scores and
// the weighted sum) and 8 S K^2 d backward, as GEMM, on either path.
TEST(OpProfile, FusedAttentionCountsTheProductsBmmWould) {
  const int64_t S = 6, K = 5, d = 4;
  // All three need gradients, as in the UNet (one qkv projection): bmm's backward then runs its 4 products.
  auto q = torch::randn({S, K, d}).requires_grad_(true), k = torch::randn({S, K, d}).requires_grad_(true),
       v = torch::randn({S, K, d}).requires_grad_(true);
  for (const char* path : {"fused", "bmm"}) {
    test::ScopedConv scoped("auto", path);
    const auto p = profile_ops([&] { small_attention(q, k, v).sum().backward(); }, 1);
    EXPECT_DOUBLE_EQ(p.forward_flops_by_kind.at("gemm"), 4.0 * S * K * K * d) << path;
    EXPECT_DOUBLE_EQ(p.backward_flops_by_kind.at("gemm"), 8.0 * S * K * K * d) << path;
  }
}

TEST(OpProfile, PeakAtTinyShapes) {
  PeakOptions o;
  o.convs = {{1, 4, 6}};
  o.gemms = {16};
  o.rounds = 1;
  const auto p = measure_peak(o);
  ASSERT_EQ(p.shapes.size(), 2u);
  EXPECT_EQ(p.shapes[0].kind, "convolution");
  EXPECT_DOUBLE_EQ(p.shapes[0].flops, 2.0 * 1 * 4 * 4 * 9 * 6 * 6);
  EXPECT_DOUBLE_EQ(p.shapes[1].flops, 2.0 * 16 * 16 * 16);
  EXPECT_GT(p.best("convolution"), 0);
  EXPECT_GT(p.best("gemm"), 0);
  EXPECT_NE(p.conv_kernel.find("conv"), std::string::npos);
  const auto j = peak_json(p);
  EXPECT_EQ(j["shapes"].size(), 2u);
}

TEST(OpProfile, BadPeakShapesAreConfigErrors) {
  EXPECT_EQ(parse_peak_conv("64:128:16").channels, 128);
  for (const char* bad : {"64x64x32", "64:64", "64:64:32:1", "0:64:32", "a:b:c", "64:64:32 "})
    EXPECT_NE(test::error_of<ConfigError>([&] { parse_peak_conv(bad); }).find("expected N:C:HW"), std::string::npos)
        << bad;
  PeakOptions o;
  o.rounds = 0;
  EXPECT_NE(test::error_of<ConfigError>([&] { measure_peak(o); }).find("--peak-rounds"), std::string::npos);
}

}  // namespace
}  // namespace retort
