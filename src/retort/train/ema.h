// Exponential moving averages of weights: the teacher's saved weights and, with [distill] ema,
// the distilled student's. Averaging the iterates evens out the oscillation of adversarial and
// distribution-matching training, which single checkpoints show as large swings in FID.
#pragma once
#include <cstdint>

#include <torch/torch.h>

#include "retort/train/multi_tensor_adamw.h"

namespace retort {

// Blends `model` into `ema` (same architecture): ema = decay ema + (1 - decay) model for the
// parameters; buffers are copied. On a GPU as two multi-tensor ops (train/multi_tensor_adamw.h).
void ema_update(torch::nn::Module& ema, torch::nn::Module& model, double decay,
                Batching batching = Batching::automatic);

// The decay used after `step` updates (0-based): min(decay, (step + 1) / (step + 10)), the warm-up
// of Hoogeboom's / diffusers' EMA, so that early averages do not remember the initial weights.
double ema_decay(double decay, int64_t step);

}  // namespace retort
