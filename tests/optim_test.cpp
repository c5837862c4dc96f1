// The multi-tensor AdamW and clipping (train/multi_tensor_adamw.h) against LibTorch's own, bit for bit.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <sstream>

#include "retort/train/distill_loop.h"
#include "retort/train/ema.h"
#include "retort/train/multi_tensor_adamw.h"

namespace retort {
namespace {

struct Net : torch::nn::Module {
  Net() {
    conv = register_module("conv", torch::nn::Conv2d(torch::nn::Conv2dOptions(2, 3, 3).padding(1)));
    fc = register_module("fc", torch::nn::Linear(3 * 16, 5));
    extra = register_parameter("extra", torch::randn({4}));
    stat = register_buffer("stat", torch::randn({2}));
  }
  torch::Tensor forward(const torch::Tensor& x, bool use_extra) {
    auto y = fc(torch::silu(conv(x)).flatten(1)).pow(2).mean();
    return use_extra ? y + extra.pow(3).sum() : y;
  }
  torch::nn::Conv2d conv{nullptr};
  torch::nn::Linear fc{nullptr};
  torch::Tensor extra, stat;
};

std::shared_ptr<Net> net_with_seed(uint64_t seed) {
  torch::manual_seed(seed);
  return std::make_shared<Net>();
}

void expect_same_parameters(Net& a, Net& b) {
  auto pa = a.parameters(), pb = b.parameters();
  ASSERT_EQ(pa.size(), pb.size());
  for (size_t i = 0; i < pa.size(); ++i) EXPECT_TRUE(torch::equal(pa[i], pb[i])) << "parameter " << i;
}

// Steps both optimisers on the same losses. `extra` has no gradient on steps 2 and 3, so its step
// count falls behind the others' and the update runs with two bias corrections at once.
template <class A, class B>
void step_both(Net& na, A& a, Net& nb, B& b, int first, int last) {
  for (int s = first; s < last; ++s) {
    torch::manual_seed(100 + s);
    auto x = torch::randn({6, 2, 4, 4});
    const bool use_extra = s != 2 && s != 3;
    a.zero_grad();
    na.forward(x, use_extra).backward();
    a.step();
    b.zero_grad();
    nb.forward(x, use_extra).backward();
    b.step();
  }
}

TEST(MultiTensorAdamW, SameAsLibTorchAdamWBitForBit) {
  for (double decay : {0.0, 0.05}) {
    auto na = net_with_seed(3), nb = net_with_seed(3);
    auto opts = torch::optim::AdamWOptions(3e-2).betas({0.8, 0.95}).weight_decay(decay);
    torch::optim::AdamW reference(na->parameters(), opts);
    MultiTensorAdamW multi(nb->parameters(), opts, Batching::always);
    step_both(*na, reference, *nb, multi, 0, 7);
    expect_same_parameters(*na, *nb);
    // The parameters moved: a step that did nothing would pass the equality too.
    EXPECT_FALSE(torch::equal(na->parameters()[0], net_with_seed(3)->parameters()[0]));
  }
}

TEST(MultiTensorAdamW, CheckpointsLoadInEitherOptimizer) {
  auto na = net_with_seed(4), nb = net_with_seed(4);
  auto opts = torch::optim::AdamWOptions(1e-2).weight_decay(0.01);
  torch::optim::AdamW reference(na->parameters(), opts);
  MultiTensorAdamW multi(nb->parameters(), opts, Batching::always);
  step_both(*na, reference, *nb, multi, 0, 4);
  // Swap their states through LibTorch's serialisation and continue: still in step.
  std::stringstream from_reference, from_multi;
  torch::save(reference, from_reference);
  torch::save(multi, from_multi);
  torch::optim::AdamW reference2(na->parameters(), opts);
  MultiTensorAdamW multi2(nb->parameters(), opts, Batching::always);
  torch::load(reference2, from_multi);
  torch::load(multi2, from_reference);
  step_both(*na, reference2, *nb, multi2, 4, 8);
  expect_same_parameters(*na, *nb);
}

std::vector<torch::Tensor> gradients_of(Net& n) {
  std::vector<torch::Tensor> g;
  for (auto& p : n.parameters()) g.push_back(p.grad());
  return g;
}

TEST(ClipGradNorm, SameAsLibTorchBitForBit) {
  for (double max_norm : {1e-3, 0.05, 1e3}) {  // clipped hard, clipped, not clipped
    auto na = net_with_seed(5), nb = net_with_seed(5);
    torch::manual_seed(9);
    auto x = torch::randn({6, 2, 4, 4});
    na->forward(x, true).backward();
    nb->forward(x, true).backward();
    const double expected = torch::nn::utils::clip_grad_norm_(na->parameters(), max_norm);
    const double got = clip_grad_norm(gradients_of(*nb), max_norm);
    EXPECT_EQ(got, expected) << "max_norm " << max_norm;
    auto ga = gradients_of(*na), gb = gradients_of(*nb);
    for (size_t i = 0; i < ga.size(); ++i) EXPECT_TRUE(torch::equal(ga[i], gb[i])) << max_norm << " grad " << i;
    if (max_norm < 1) EXPECT_LT(torch::stack(at::_foreach_norm(gb, 2)).norm().item<double>(), 1.01 * max_norm);
  }
  // finalize_gradients without clipping: the norm clip_grad_norm_ would have returned.
  auto n = net_with_seed(6);
  n->forward(torch::randn({2, 2, 4, 4}), true).backward();
  auto g = gradients_of(*n);
  std::vector<torch::Tensor> norms;
  for (auto& t : g) norms.push_back(t.norm());
  EXPECT_EQ(finalize_gradients(n->parameters(), 0), torch::stack(norms).norm().item<double>());
}

TEST(Ema, BlendsParametersAndCopiesBuffersAlikeInBothBatchings) {
  auto model = net_with_seed(8), before = net_with_seed(7);
  auto per_tensor = net_with_seed(7), multi = net_with_seed(7);
  ema_update(*per_tensor, *model, 0.9, Batching::automatic);  // the CPU's loop
  ema_update(*multi, *model, 0.9, Batching::always);
  expect_same_parameters(*per_tensor, *multi);
  auto p = per_tensor->parameters(), m = model->parameters(), b = before->parameters();
  for (size_t i = 0; i < p.size(); ++i) EXPECT_TRUE(torch::allclose(p[i], 0.9 * b[i] + 0.1 * m[i], 1e-6, 1e-7));
  EXPECT_FALSE(torch::allclose(p[1], b[1]));
  EXPECT_TRUE(torch::equal(per_tensor->stat, model->stat));
  EXPECT_TRUE(torch::equal(multi->stat, model->stat));
}

}  // namespace
}  // namespace retort
