#include "retort/models/feature_discriminator.h"

namespace retort {
namespace nn = torch::nn;

int64_t bottleneck_resolution(int64_t resolution, int64_t levels) {
  int64_t r = resolution;
  for (int64_t l = 1; l < levels; ++l) r = (r + 1) / 2;
  return r;
}

FeatureDiscriminatorImpl::FeatureDiscriminatorImpl(UNetDenoiser backbone, int64_t groups)
    : backbone_(std::move(backbone)) {
  const auto& o = backbone_->net->options();
  const int64_t C = o.widths.back();
  int64_t r = bottleneck_resolution(o.resolution, o.widths.size());
  head = register_module("head", nn::Sequential());
  video_ = o.frames > 0;
  if (video_) {  // FVGen's head: 3-D convolutions over (frames, height, width)
    while (r > 1) {
      head->push_back(nn::Conv3d(nn::Conv3dOptions(C, C, {3, 4, 4}).stride({1, 2, 2}).padding({1, 1, 1})));
      head->push_back(nn::GroupNorm(std::min(groups, C), C));
      head->push_back(nn::SiLU());
      r = r / 2;
    }
    head->push_back(nn::Conv3d(nn::Conv3dOptions(C, 1, 1)));
    return;
  }
  while (r > 1) {
    head->push_back(nn::Conv2d(nn::Conv2dOptions(C, C, 4).stride(2).padding(1)));
    head->push_back(nn::GroupNorm(std::min(groups, C), C));
    head->push_back(nn::SiLU());
    r = r / 2;  // (r + 2 - 4) / 2 + 1
  }
  head->push_back(nn::Conv2d(nn::Conv2dOptions(C, 1, 1)));
}

torch::Tensor FeatureDiscriminatorImpl::logit(const torch::Tensor& xt, const torch::Tensor& t, const Cond& cond) {
  auto f = backbone_->net->encode(xt, t, cond);
  // Any spatial size left (none for the default sizes) is averaged; a video's frames too.
  if (video_) return head->forward(f.permute({0, 2, 1, 3, 4})).mean({2, 3, 4}).squeeze(1);  // [B,C,K,r,r]
  return head->forward(f).mean({2, 3}).squeeze(1);
}

}  // namespace retort
