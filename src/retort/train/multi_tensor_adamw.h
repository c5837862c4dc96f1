// AdamW and gradient clipping as a few multi-tensor (_foreach_) ops over all parameters at once.
// LibTorch's AdamW makes about eight ops per parameter tensor, clip_grad_norm_ and the EMA two each;
// a UNet has over a hundred tensors, so on a GPU, where small updates are bound by the host's rate
// of kernel launches, one optimiser step was ~1 300 launches. The arithmetic is LibTorch's, in its
// order, so results are bit for bit the same on the CPU (tested), and the state is
// torch::optim::AdamW's: checkpoints load in either. On the CPU, AdamW and the EMA keep LibTorch's
// per-tensor loop: it finishes each tensor while its arrays are in cache, where eight passes over
// all tensors do not (README "On a GPU": 1.33x on a DMD2 update on an H200; on the CPU, 0.77x if
// batched).
#pragma once
#include <torch/torch.h>

#include <vector>

namespace retort {

// `automatic`: multi-tensor ops for CUDA tensors, the per-tensor loop otherwise; `always`: the
// multi-tensor ops everywhere (the tests check their arithmetic on the CPU).
enum class Batching { automatic, always };
bool batches(const torch::Tensor& any, Batching b);

class MultiTensorAdamW : public torch::optim::AdamW {
 public:
  MultiTensorAdamW(std::vector<torch::Tensor> params, torch::optim::AdamWOptions options,
                   Batching batching = Batching::automatic)
      : torch::optim::AdamW(std::move(params), std::move(options)), batching_(batching) {}
  torch::Tensor step(LossClosure closure = nullptr) override;

 private:
  Batching batching_;
};

// torch::nn::utils::clip_grad_norm_ (2-norm) for the gradients `grads`: scales them so that their
// global norm is at most `max_norm` and returns the norm before scaling. Multi-tensor ops on every
// device: each tensor is read once and scaled once either way.
double clip_grad_norm(const std::vector<torch::Tensor>& grads, double max_norm);

}  // namespace retort
