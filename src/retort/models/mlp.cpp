#include "retort/models/mlp.h"

#include <cmath>

#include "retort/core/error.h"

namespace retort {
namespace F = torch::nn::functional;

torch::Tensor time_features(const torch::Tensor& t, int64_t dim) {
  const int64_t half = dim / 2;
  auto freqs = torch::exp(-std::log(10000.0) * torch::arange(half, t.options().dtype(torch::kFloat32)) / half);
  auto args = (t.to(torch::kFloat32) * 1000).unsqueeze(1) * freqs.unsqueeze(0);
  return torch::cat({args.sin(), args.cos()}, 1);
}

MlpTrunkImpl::MlpTrunkImpl(const MlpOptions& opts) : opts_(opts) {
  if (opts_.out_dim == 0) opts_.out_dim = opts_.dim;
  const int64_t H = opts_.hidden;
  time_proj = register_module("time_proj", torch::nn::Linear(opts_.time_dim, H));
  if (opts_.num_classes > 0) {
    // Index num_classes is the null class.
    class_embed = register_module("class_embed", torch::nn::Embedding(opts_.num_classes + 1, opts_.cond_dim));
    cond_proj = register_module("cond_proj", torch::nn::Linear(opts_.cond_dim, H));
  }
  if (opts_.camera_dim > 0) camera_proj = register_module("camera_proj", torch::nn::Linear(opts_.camera_dim, H));
  in_proj = register_module("in_proj", LoraLinear(opts_.dim, H));
  block_in = register_module("block_in", torch::nn::ModuleList());
  block_time = register_module("block_time", torch::nn::ModuleList());
  block_out = register_module("block_out", torch::nn::ModuleList());
  for (int64_t b = 0; b < opts_.blocks; ++b) {
    block_in->push_back(LoraLinear(H, H));
    block_time->push_back(torch::nn::Linear(H, H));
    block_out->push_back(LoraLinear(H, H));
  }
  out_proj = register_module("out_proj", LoraLinear(H, opts_.out_dim));
  if (opts_.zero_out) {
    torch::NoGradGuard ng;
    out_proj->base->weight.zero_();
    out_proj->base->bias.zero_();
  }
}

torch::Tensor MlpTrunkImpl::condition_embedding(const Cond& cond, int64_t batch) {
  if (!class_embed) return {};
  if (cond.embedding.defined()) {
    if (cond.embedding.size(-1) != opts_.cond_dim)
      throw Error("condition embedding has width " + std::to_string(cond.embedding.size(-1)) +
                  ", the model expects " + std::to_string(opts_.cond_dim));
    return cond.embedding.expand({batch, opts_.cond_dim});
  }
  torch::Tensor idx;
  if (!cond.labels.defined()) {
    idx = torch::full({batch}, opts_.num_classes, torch::TensorOptions().dtype(torch::kLong).device(class_embed->weight.device()));
  } else {
    if ((cond.labels >= opts_.num_classes).any().item<bool>() || (cond.labels < kNullClass).any().item<bool>())
      throw Error("class label out of range for a model of " + std::to_string(opts_.num_classes) + " classes");
    idx = torch::where(cond.labels == kNullClass, torch::full_like(cond.labels, opts_.num_classes), cond.labels);
  }
  return class_embed->forward(idx);
}

torch::Tensor MlpTrunkImpl::forward(const torch::Tensor& x, const torch::Tensor& t, const Cond& cond) {
  const int64_t B = x.size(0);
  auto emb = F::silu(time_proj->forward(time_features(t, opts_.time_dim)));
  if (class_embed) emb = emb + cond_proj->forward(condition_embedding(cond, B));
  if (camera_proj && cond.camera.defined()) emb = emb + camera_proj->forward(cond.camera);
  auto h = in_proj->forward(x.reshape({B, -1}));
  for (int64_t b = 0; b < opts_.blocks; ++b) {
    auto u = block_in[b]->as<LoraLinearImpl>()->forward(F::silu(h));
    u = u + block_time[b]->as<torch::nn::LinearImpl>()->forward(emb);
    h = h + block_out[b]->as<LoraLinearImpl>()->forward(F::silu(u));
  }
  return out_proj->forward(F::silu(h));
}

MlpDenoiserImpl::MlpDenoiserImpl(const MlpOptions& opts, Schedule schedule_, Prediction prediction_)
    : prediction(prediction_), schedule(std::move(schedule_)) {
  trunk = register_module("trunk", MlpTrunk(opts));
}

torch::Tensor MlpDenoiserImpl::forward(const torch::Tensor& xt, const torch::Tensor& t, const Cond& cond) {
  return trunk->forward(xt, t, cond).reshape(xt.sizes());
}

torch::Tensor MlpDenoiserImpl::eps(const torch::Tensor& xt, const torch::Tensor& t, const Cond& cond) {
  auto out = forward(xt, t, cond);
  if (prediction == Prediction::Eps) return out;
  auto abar = schedule.alpha_bar(t);
  return to_eps(prediction, out, xt, abar.sqrt(), (1 - abar).sqrt());
}

torch::Tensor MlpDenoiserImpl::condition_embedding(const Cond& cond, int64_t batch) {
  auto e = trunk->condition_embedding(cond, batch);
  if (!e.defined()) return Denoiser::condition_embedding(cond, batch);
  return e;
}

MlpDiscriminatorImpl::MlpDiscriminatorImpl(MlpOptions opts) {
  opts.out_dim = 1;
  trunk = register_module("trunk", MlpTrunk(opts));
}

torch::Tensor MlpDiscriminatorImpl::logit(const torch::Tensor& xt, const torch::Tensor& t, const Cond& cond) {
  return trunk->forward(xt, t, cond).squeeze(1);
}

}  // namespace retort
