// retort's models out to Python: a TorchScript module that `torch.jit.load` reads with nothing of
// retort installed.
//  * A retort UNet becomes a module whose forward(x_t, t, cond) is the UNet written out in
//    TorchScript (t: float time in [0, 1]; cond: int64 class, num_classes or -1 = no class, or a
//    video model's render channels) with a features(x_t, t, cond) -> List[Tensor] method (the
//    encoder levels, bottleneck last). Its parameters keep their values; its outputs equal the C++
//    UNet's to float rounding.
//  * A TorchScript teacher's students are already TorchScript: their module is copied.
//  * A few-step student also gets
//        sample(noise: Tensor, cond: Tensor, renoise: Optional[Tensor] = None) -> Tensor
//    its K-step chain from noise [B, C, H, W] (renoise [K-1, B, C, H, W]: the draws that re-noise
//    each step's x0; random when not given), clamped to [-1, 1].
// Every export carries retort.json (so retort loads it back as a TorchScript teacher) and a
// student's "retort.student".
#pragma once
#include <filesystem>
#include <vector>

#include <torch/script.h>

#include "retort/models/torchscript_model.h"
#include "retort/models/unet.h"

namespace retort {

// The UNet as a TorchScript module with forward and features, and the contract that calls it. A
// UNet that reads both classes and render channels is refused (ConfigError): cond is one or the other.
torch::jit::Module unet_to_torchscript(UNetDenoiserImpl& model, ScriptContract* contract);

// Adds `sample` (above) to `module`, calling the contract's method at the student's timesteps
// (discrete schedule indices) over the contract's schedule and prediction.
void define_student_sample(torch::jit::Module& module, const ScriptContract& contract,
                           const std::vector<int64_t>& timesteps);

}  // namespace retort
