// The fused attention over short sequences (models/small_attention.h) against bmm + softmax:
// output and the gradients to q, k and v in float64 and float32, central finite differences of
// the kernel's own backward, a backward that is itself differentiated (create_graph), and
// runtime.attention = "bmm" running LibTorch's ops.
#include <gtest/gtest.h>

#include "retort/core/error.h"
#include "retort/core/runtime.h"
#include "retort/models/small_attention.h"

namespace retort {
namespace {

struct Grads {
  torch::Tensor out, dq, dk, dv;
};

template <class F>
Grads run(F attention, const torch::Tensor& q0, const torch::Tensor& k0, const torch::Tensor& v0,
          const torch::Tensor& g) {
  auto q = q0.clone().requires_grad_(true), k = k0.clone().requires_grad_(true), v = v0.clone().requires_grad_(true);
  auto out = attention(q, k, v);
  (out * g).sum().backward();
  return {out.detach(), q.grad(), k.grad(), v.grad()};
}

double max_diff(const torch::Tensor& a, const torch::Tensor& b) { return (a - b).abs().max().item<double>(); }

TEST(SmallAttention, MatchesBmmSoftmaxForwardAndBackward) {
  torch::manual_seed(0);
  for (auto dtype : {torch::kFloat64, torch::kFloat32}) {
    // Sizes of the video UNet's temporal attention (K frames, d channels per head), and odd ones.
    for (auto [N, K, d] : {std::tuple<int64_t, int64_t, int64_t>{300, 8, 16}, {7, 3, 5}, {1, 1, 4}, {64, 16, 32}}) {
      auto opts = torch::TensorOptions().dtype(dtype);
      auto q = torch::randn({N, K, d}, opts) * 2, k = torch::randn({N, K, d}, opts) * 2, v = torch::randn({N, K, d}, opts);
      auto g = torch::randn({N, K, d}, opts);
      auto a = run(small_attention, q, k, v, g), r = run(small_attention_reference, q, k, v, g);
      const double tol = dtype == torch::kFloat64 ? 1e-12 : 2e-5;
      EXPECT_LT(max_diff(a.out, r.out), tol) << N << " " << K << " " << d;
      EXPECT_LT(max_diff(a.dq, r.dq), tol) << N << " " << K << " " << d;
      EXPECT_LT(max_diff(a.dk, r.dk), tol) << N << " " << K << " " << d;
      EXPECT_LT(max_diff(a.dv, r.dv), tol) << N << " " << K << " " << d;
      // The gradients are not trivially zero (the comparison would prove nothing), except through
      // a softmax over one frame, which is constant.
      if (K > 1) {
        EXPECT_GT(a.dq.abs().max().item<double>(), 1e-3);
        EXPECT_GT(a.dk.abs().max().item<double>(), 1e-3);
      } else {
        EXPECT_EQ(a.dq.abs().max().item<double>(), 0.0);
      }
    }
  }
}

TEST(SmallAttention, BackwardMatchesFiniteDifferences) {
  torch::manual_seed(1);
  auto opts = torch::TensorOptions().dtype(torch::kFloat64);
  const int64_t N = 3, K = 4, d = 5;
  std::vector<torch::Tensor> in = {torch::randn({N, K, d}, opts), torch::randn({N, K, d}, opts),
                                   torch::randn({N, K, d}, opts)};
  auto g = torch::randn({N, K, d}, opts);
  auto a = run(small_attention, in[0], in[1], in[2], g);
  const std::vector<torch::Tensor> analytic = {a.dq, a.dk, a.dv};
  auto loss = [&](const std::vector<torch::Tensor>& x) {
    torch::NoGradGuard ng;
    return (small_attention(x[0], x[1], x[2]) * g).sum().item<double>();
  };
  const double h = 1e-6;
  for (int which = 0; which < 3; ++which)
    for (int64_t e = 0; e < N * K * d; e += 7) {
      auto plus = in, minus = in;
      plus[which] = in[which].clone();
      minus[which] = in[which].clone();
      plus[which].view(-1)[e] += h;
      minus[which].view(-1)[e] -= h;
      const double numeric = (loss(plus) - loss(minus)) / (2 * h);
      EXPECT_NEAR(analytic[which].view(-1)[e].item<double>(), numeric, 1e-7) << "input " << which << " entry " << e;
    }
}

TEST(SmallAttention, DifferentiatedBackwardMatchesReference) {
  torch::manual_seed(2);
  auto opts = torch::TensorOptions().dtype(torch::kFloat64);
  auto q0 = torch::randn({5, 4, 3}, opts), k0 = torch::randn({5, 4, 3}, opts), v0 = torch::randn({5, 4, 3}, opts);
  auto grad_norm = [&](auto attention) {
    auto q = q0.clone().requires_grad_(true), k = k0.clone().requires_grad_(true), v = v0.clone().requires_grad_(true);
    auto dq = torch::autograd::grad({attention(q, k, v).pow(2).sum()}, {q}, {}, true, /*create_graph=*/true)[0];
    dq.pow(2).sum().backward();  // a gradient penalty's second derivative
    return std::vector<torch::Tensor>{q.grad(), k.grad(), v.grad()};
  };
  auto a = grad_norm(small_attention), r = grad_norm(small_attention_reference);
  for (int i = 0; i < 3; ++i) EXPECT_LT(max_diff(a[i], r[i]), 1e-10) << i;
}

TEST(SmallAttention, RuntimeBmmRunsLibTorchsOps) {
  torch::manual_seed(3);
  auto q = torch::randn({50, 8, 16}), k = torch::randn({50, 8, 16}), v = torch::randn({50, 8, 16});
  auto fused = small_attention(q, k, v);
  RuntimeOptions rt;
  rt.attention = "bmm";
  apply_runtime(rt);
  auto bmm = small_attention(q, k, v);
  rt.attention = "auto";
  apply_runtime(rt);
  EXPECT_TRUE(torch::equal(bmm, small_attention_reference(q, k, v)));  // bit for bit: the same ops
  EXPECT_FALSE(torch::equal(fused, bmm));  // the kernel sums in another order...
  EXPECT_LT(max_diff(fused, bmm), 1e-5);   // ...to the same result
  EXPECT_EQ(cpu_attention_path(), "fused");
}

TEST(SmallAttention, RejectsMismatchedShapes) {
  auto q = torch::randn({2, 3, 4});
  EXPECT_THROW(small_attention(q, torch::randn({2, 3, 5}), q), Error);
  EXPECT_THROW(small_attention(torch::randn({3, 4}), torch::randn({3, 4}), torch::randn({3, 4})), Error);
}

}  // namespace
}  // namespace retort
