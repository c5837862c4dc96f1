// A linear layer that can grow a low-rank adapter: y = W x + b + (alpha / r) B A x with B = 0 at
// the start, so the adapted model begins exactly at the base model (LoRA, Hu et al.).
#pragma once
#include <torch/torch.h>

namespace retort {

class LoraLinearImpl : public torch::nn::Module {
 public:
  LoraLinearImpl(int64_t in, int64_t out);
  torch::Tensor forward(const torch::Tensor& x);
  // Freezes W and b and adds a trainable rank-`rank` adapter.
  void enable_lora(int64_t rank, double alpha);
  bool has_lora() const { return lora_a_.defined(); }
  torch::nn::Linear base{nullptr};

 private:
  torch::Tensor lora_a_, lora_b_;
  double scale_ = 0.0;
};
TORCH_MODULE(LoraLinear);

// Enables LoRA on every LoraLinear below `root` and freezes every other parameter.
void enable_lora_everywhere(torch::nn::Module& root, int64_t rank, double alpha);

}  // namespace retort
