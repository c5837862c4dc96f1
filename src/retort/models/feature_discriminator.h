// Discriminators that read a UNet's encoder features (methods.md section 2, GAN losses):
//  * FVGen: the frozen teacher's encoder + a small trainable head;
//  * DMD2: the fake score's encoder + a head, trained together with the fake score.
// Two heads (DiscFeatures):
//  * bottleneck: DMD2's, [conv 4x4 stride 2 + GroupNorm + SiLU] down to 1x1, then a 1x1 conv to a
//    logit; for a video backbone the same with 3-D convolutions over (frames, height, width) and
//    the logit averaged over frames.
//  * levels: a patch head on every encoder level and the bottleneck (LADD's multi-level heads on a
//    generative backbone): [conv 3x3 + SiLU + conv 1x1] to one logit per position (3-D
//    convolutions for video), each position classified on its own (part_logits). It sees the
//    fine levels, so pixel-scale artefacts (speckle) the bottleneck averages away are caught, and
//    it has no normalisation, so a global colour shift is not normalised away either.
// The backbone is held but not registered, so parameters() / checkpoints of the discriminator
// hold only the head; the backbone's own owner trains (or freezes) it.
#pragma once
#include <string>
#include <vector>

#include "retort/models/denoiser.h"
#include "retort/models/diffusion_model.h"

namespace retort {

enum class DiscFeatures { Bottleneck, Levels };
std::vector<std::string> disc_feature_names();  // "bottleneck", "levels", in enum order

class FeatureDiscriminatorImpl : public Discriminator {
 public:
  explicit FeatureDiscriminatorImpl(DiffusionModelPtr backbone, DiscFeatures features = DiscFeatures::Bottleneck,
                                    int64_t groups = 8);
  // The mean over parts of each part's mean logit: the log density ratio r of softened RKL.
  torch::Tensor logit(const torch::Tensor& xt, const torch::Tensor& t, const Cond& cond) override;
  // bottleneck: {[B]}; levels: one [B, K?, r, r] map per level.
  std::vector<torch::Tensor> part_logits(const torch::Tensor& xt, const torch::Tensor& t, const Cond& cond) override;
  torch::nn::ModuleList heads{nullptr};

 private:
  torch::Tensor head_logit(size_t i, const torch::Tensor& f);
  DiffusionModelPtr backbone_;
  DiscFeatures features_;
  bool video_ = false;
};
TORCH_MODULE(FeatureDiscriminator);

// Side of the UNet bottleneck for an input of side `resolution` with `levels` levels (each
// stride-2 3x3 conv maps r to ceil(r / 2)).
int64_t bottleneck_resolution(int64_t resolution, int64_t levels);


}  // namespace retort
