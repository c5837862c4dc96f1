// Discriminators that read a UNet's bottleneck features (methods.md section 2, GAN losses):
//  * FVGen: the frozen teacher's encoder + a small trainable head;
//  * DMD2: the fake score's encoder + a head, trained together with the fake score.
// The head is DMD2's: [conv 4x4 stride 2 + GroupNorm + SiLU] down to 1x1, then a 1x1 conv to a
// logit; for a video backbone (FVGen) the same with 3-D convolutions over (frames, height, width)
// and the logit averaged over frames. The backbone is held but not registered, so parameters() / checkpoints of the
// discriminator hold only the head; the backbone's own owner trains (or freezes) it.
#pragma once
#include "retort/models/denoiser.h"
#include "retort/models/unet.h"

namespace retort {

class FeatureDiscriminatorImpl : public Discriminator {
 public:
  FeatureDiscriminatorImpl(UNetDenoiser backbone, int64_t groups = 8);
  torch::Tensor logit(const torch::Tensor& xt, const torch::Tensor& t, const Cond& cond) override;
  torch::nn::Sequential head{nullptr};

 private:
  UNetDenoiser backbone_;
  bool video_ = false;
};
TORCH_MODULE(FeatureDiscriminator);

// Side of the UNet bottleneck for an input of side `resolution` with `levels` levels (each
// stride-2 3x3 conv maps r to ceil(r / 2)).
int64_t bottleneck_resolution(int64_t resolution, int64_t levels);

}  // namespace retort
