#include "retort/train/multi_tensor_adamw.h"

#include <cmath>
#include <map>
#include <sstream>
#include <string>
#include <type_traits>

namespace retort {

namespace {

// torch::optim::Optimizer keys its per-parameter state by the parameter's TensorImpl: as a
// pointer since LibTorch 2.0, as the pointer's text in 1.13.
template <class Key>
Key state_key(const torch::Tensor& p) {
  if constexpr (std::is_same_v<Key, std::string>) {
    std::ostringstream os;
    os << p.unsafeGetTensorImpl();
    return os.str();
  } else {
    return p.unsafeGetTensorImpl();
  }
}

}  // namespace

bool batches(const torch::Tensor& any, Batching b) { return b == Batching::always || any.is_cuda(); }

torch::Tensor MultiTensorAdamW::step(LossClosure closure) {
  for (const auto& group : param_groups_)
    if (group.params().empty() || !batches(group.params()[0], batching_) ||
        static_cast<const torch::optim::AdamWOptions&>(group.options()).amsgrad())
      return torch::optim::AdamW::step(std::move(closure));  // LibTorch's loop (AMSGrad: unused by retort)
  torch::NoGradGuard no_grad;
  torch::Tensor loss;
  if (closure) {
    at::AutoGradMode enable_grad(true);
    loss = closure();
  }
  using Key = typename std::decay_t<decltype(state_)>::key_type;
  for (auto& group : param_groups_) {
    const auto& o = static_cast<const torch::optim::AdamWOptions&>(group.options());
    const auto [beta1, beta2] = o.betas();
    // Parameters whose step counts differ (one that had no gradient for a while) differ in bias
    // correction, so each count is one batch of multi-tensor ops.
    struct Batch {
      std::vector<torch::Tensor> params, grads, exp_avgs, exp_avg_sqs;
    };
    std::map<int64_t, Batch> by_step;
    for (auto& p : group.params()) {
      if (!p.grad().defined()) continue;
      TORCH_CHECK(!p.grad().is_sparse(), "AdamW does not support sparse gradients");
      auto& slot = state_[state_key<Key>(p)];
      if (!slot) {
        auto s = std::make_unique<torch::optim::AdamWParamState>();
        s->step(0);
        s->exp_avg(torch::zeros_like(p, torch::MemoryFormat::Preserve));
        s->exp_avg_sq(torch::zeros_like(p, torch::MemoryFormat::Preserve));
        slot = std::move(s);
      }
      auto& s = static_cast<torch::optim::AdamWParamState&>(*slot);
      s.step(s.step() + 1);
      auto& b = by_step[s.step()];
      b.params.push_back(p);
      b.grads.push_back(p.grad());
      b.exp_avgs.push_back(s.exp_avg());
      b.exp_avg_sqs.push_back(s.exp_avg_sq());
    }
    for (auto& [step, b] : by_step) {
      if (o.weight_decay() != 0) at::_foreach_mul_(b.params, 1 - o.lr() * o.weight_decay());
      const double bias_correction1 = 1 - std::pow(beta1, step);
      const double bias_correction2 = 1 - std::pow(beta2, step);
      at::_foreach_mul_(b.exp_avgs, beta1);
      at::_foreach_add_(b.exp_avgs, b.grads, 1 - beta1);
      at::_foreach_mul_(b.exp_avg_sqs, beta2);
      at::_foreach_addcmul_(b.exp_avg_sqs, b.grads, b.grads, 1 - beta2);
      auto denom = at::_foreach_sqrt(b.exp_avg_sqs);
      at::_foreach_div_(denom, std::sqrt(bias_correction2));
      at::_foreach_add_(denom, o.eps());
      at::_foreach_addcdiv_(b.params, b.exp_avgs, denom, -(o.lr() / bias_correction1));
    }
  }
  return loss;
}

double clip_grad_norm(const std::vector<torch::Tensor>& grads, double max_norm) {
  if (grads.empty()) return 0.0;
  auto norms = at::_foreach_norm(grads, 2);
  const auto total = norms.size() == 1 ? norms[0] : torch::stack(norms).norm(2);
  // LibTorch's coefficient, clamp(max_norm / (total + 1e-6), max = 1), by its own tensor ops so that
  // it is the same float; read with the norm in one copy (clip_grad_norm_ reads the norm too).
  const auto coef = torch::clamp(max_norm / (total + 1e-6), c10::nullopt, 1.0);
  const auto both = torch::stack({total, coef}).to(torch::kCPU, torch::kDouble);
  const double norm = both[0].item<double>(), scale = both[1].item<double>();
  if (scale < 1.0) at::_foreach_mul_(grads, scale);  // times 1 changes nothing
  return norm;
}

}  // namespace retort
