// Batch normalisation over the global batch (PyTorch's SyncBatchNorm): in training, a rank that
// holds only its slice of the batch normalises with the mean and variance of the whole batch, so N
// ranks compute what one process computes on the whole batch, gradients through the statistics
// included. Evaluation, and a world of one, use the module's own forward unchanged.
#pragma once
#include <torch/torch.h>

namespace retort {

torch::Tensor batch_norm_over_ranks(torch::nn::BatchNorm2dImpl& bn, const torch::Tensor& x);

}  // namespace retort
