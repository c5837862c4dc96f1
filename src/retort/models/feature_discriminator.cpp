#include "retort/models/feature_discriminator.h"

namespace retort {
namespace nn = torch::nn;

std::vector<std::string> disc_feature_names() { return {"bottleneck", "levels"}; }

int64_t bottleneck_resolution(int64_t resolution, int64_t levels) {
  int64_t r = resolution;
  for (int64_t l = 1; l < levels; ++l) r = (r + 1) / 2;
  return r;
}

namespace {

// Convolution of the head: 2-D for images, 3-D over (frames, height, width) for video, where the
// frame axis keeps its size (kernel 3, padding 1).
nn::AnyModule head_conv(bool video, int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t padding) {
  if (video)
    return nn::AnyModule(nn::Conv3d(nn::Conv3dOptions(in, out, {kernel == 1 ? 1 : 3, kernel, kernel})
                                         .stride({1, stride, stride})
                                         .padding({kernel == 1 ? 0 : 1, padding, padding})));
  return nn::AnyModule(nn::Conv2d(nn::Conv2dOptions(in, out, kernel).stride(stride).padding(padding)));
}

nn::Sequential bottleneck_head(bool video, int64_t C, int64_t r, int64_t groups) {
  nn::Sequential head;
  while (r > 1) {
    head->push_back(head_conv(video, C, C, 4, 2, 1));
    head->push_back(nn::GroupNorm(std::min(groups, C), C));
    head->push_back(nn::SiLU());
    r = r / 2;  // (r + 2 - 4) / 2 + 1
  }
  head->push_back(head_conv(video, C, 1, 1, 1, 0));
  return head;
}

nn::Sequential patch_head(bool video, int64_t C) {
  nn::Sequential head;
  head->push_back(head_conv(video, C, C, 3, 1, 1));
  head->push_back(nn::SiLU());
  head->push_back(head_conv(video, C, 1, 1, 1, 0));
  return head;
}

}  // namespace

FeatureDiscriminatorImpl::FeatureDiscriminatorImpl(DiffusionModelPtr backbone, DiscFeatures features, int64_t groups)
    : backbone_(std::move(backbone)), features_(features) {
  video_ = backbone_->shape().frames > 0;
  const auto levels = backbone_->feature_shapes();  // [C, r, r] each, the bottleneck last
  heads = register_module("heads", nn::ModuleList());
  if (features_ == DiscFeatures::Bottleneck) {
    heads->push_back(bottleneck_head(video_, levels.back()[0], levels.back()[1], groups));
    return;
  }
  for (const auto& l : levels) heads->push_back(patch_head(video_, l[0]));
}

torch::Tensor FeatureDiscriminatorImpl::head_logit(size_t i, const torch::Tensor& f) {
  // A video's features [B, K, C, r, r] go to the 3-D head as [B, C, K, r, r].
  auto l = heads[i]->as<nn::Sequential>()->forward(video_ ? f.permute({0, 2, 1, 3, 4}) : f);
  return l.squeeze(1);  // [B, (K,) r, r]
}

std::vector<torch::Tensor> FeatureDiscriminatorImpl::part_logits(const torch::Tensor& xt, const torch::Tensor& t,
                                                                 const Cond& cond) {
  if (features_ == DiscFeatures::Bottleneck) {
    // Any spatial size left (none for the default sizes) is averaged; a video's frames too.
    auto l = head_logit(0, backbone_->encode(xt, t, cond));
    return {l.reshape({l.size(0), -1}).mean(1)};
  }
  auto levels = backbone_->encode_levels(xt, t, cond);
  std::vector<torch::Tensor> out;
  for (size_t i = 0; i < levels.size(); ++i) out.push_back(head_logit(i, levels[i]));
  return out;
}

torch::Tensor FeatureDiscriminatorImpl::logit(const torch::Tensor& xt, const torch::Tensor& t, const Cond& cond) {
  return mean_part_logit(part_logits(xt, t, cond));
}

}  // namespace retort
