// Softmax attention over many short sequences, as the video UNet's temporal attention runs it:
// one sequence of K frames per pixel and head, K ~ 8.
#pragma once

#include <torch/torch.h>

namespace retort {

// out[n] = softmax(q[n] k[n]^T / sqrt(d)) v[n] for q, k, v [N, K, d]. On the CPU (float32/64)
// one kernel with its own backward loops over the N sequences: LibTorch's CPU bmm runs a batch of
// small matrices as one GEMM call (with a select and an as_strided) per matrix, which at N in the
// tens of thousands costs more than the arithmetic. Elsewhere (CUDA) bmm + softmax.
torch::Tensor small_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v);

// The same through bmm + softmax, the reference the kernel is checked against.
torch::Tensor small_attention_reference(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v);

}  // namespace retort
