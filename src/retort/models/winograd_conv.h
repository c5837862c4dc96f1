// 3x3 convolutions on the CPU through oneDNN's Winograd kernels (F(4x4, 3x3), forward and both
// backward passes). LibTorch calls oneDNN's direct kernels; on this machine the Winograd ones do
// the same convolution in 0.5-0.8 of the time at the UNets' shapes (README, "Speed"). Their float
// rounding differs from the direct kernels' (relative differences ~1e-6), so `[runtime] conv`
// chooses (core/runtime.h cpu_conv_algorithm): "winograd" (the default where oneDNN is found at
// build time) or "direct" (LibTorch's own path, which the Python twins reproduce bit for bit).
#pragma once
#include <torch/nn/modules/conv.h>

namespace retort {

// conv->forward(x), through oneDNN's Winograd kernels when cpu_conv_algorithm() is "winograd" and the
// convolution is one they take (CPU, float32, 3x3, stride 1, padding 1, no groups or dilation; a
// shape oneDNN refuses falls back to LibTorch once and is remembered).
torch::Tensor conv3x3(torch::nn::Conv2dImpl& conv, const torch::Tensor& x);

}  // namespace retort
