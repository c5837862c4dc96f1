#include "retort/models/lora.h"

#include <cmath>

#include "retort/models/denoiser.h"

namespace retort {

LoraLinearImpl::LoraLinearImpl(int64_t in, int64_t out) {
  base = register_module("base", torch::nn::Linear(in, out));
}

torch::Tensor LoraLinearImpl::forward(const torch::Tensor& x) {
  auto y = base->forward(x);
  if (lora_a_.defined()) y = y + scale_ * torch::nn::functional::linear(torch::nn::functional::linear(x, lora_a_), lora_b_);
  return y;
}

void LoraLinearImpl::enable_lora(int64_t rank, double alpha) {
  freeze(*base);
  const int64_t in = base->weight.size(1), out = base->weight.size(0);
  auto opts = base->weight.options();
  // A ~ U(-1/sqrt(in), 1/sqrt(in)) as in Linear's init; B = 0 keeps the output unchanged.
  lora_a_ = register_parameter("lora_a", (torch::rand({rank, in}, opts) * 2 - 1) / std::sqrt(double(in)));
  lora_b_ = register_parameter("lora_b", torch::zeros({out, rank}, opts));
  scale_ = alpha / double(rank);
}

void enable_lora_everywhere(torch::nn::Module& root, int64_t rank, double alpha) {
  freeze(root);
  for (auto& m : root.modules(/*include_self=*/true))
    if (auto* lin = dynamic_cast<LoraLinearImpl*>(m.get())) lin->enable_lora(rank, alpha);
}

}  // namespace retort
