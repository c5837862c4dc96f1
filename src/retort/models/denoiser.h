// The one model interface shared by teachers, fake scores and students: eps(x_t, t, cond).
#pragma once
#include <memory>
#include <vector>

#include <torch/torch.h>

namespace retort {

// Class index meaning "no condition" (the null class of classifier-free guidance).
constexpr int64_t kNullClass = -1;

// What a denoiser is conditioned on. Undefined tensors mean "not given".
struct Cond {
  torch::Tensor labels;     // int64 [B]; kNullClass entries are unconditional
  torch::Tensor embedding;  // float [B, E]: replaces the label's embedding (textual inversion, ASD's phi)
  torch::Tensor camera;     // float [B, C]: for camera-aware models
  // float [B, ..., Cc, H, W]: channels appended to the model's input (ViewCrafter's c_concat: the
  // point-cloud renders of a trajectory). The null condition is all zeros.
  torch::Tensor concat;

  static Cond null(int64_t batch, const torch::Device& device);
  static Cond classes(const torch::Tensor& labels) { Cond c; c.labels = labels; return c; }
  static Cond concatenated(const torch::Tensor& channels) { Cond c; c.concat = channels; return c; }
  // The same condition with every label replaced by the null class (embedding dropped, concat zeroed).
  Cond as_null() const;
  // Samples where `drop` [B] (bool) is true become null, the others stay (condition dropout for CFG).
  Cond dropped(const torch::Tensor& drop) const;
  Cond index(const torch::Tensor& idx) const;
  // Samples [start, start + length), moved to `device`.
  Cond slice(int64_t start, int64_t length, const torch::Device& device) const;
  static Cond cat(const Cond& a, const Cond& b);
  bool unconditional() const;
};

class Denoiser : public torch::nn::Module {
 public:
  // Noise prediction for x_t [B, ...] at times t [B] in [0, 1].
  virtual torch::Tensor eps(const torch::Tensor& xt, const torch::Tensor& t, const Cond& cond) = 0;
  // The embedding vector the model uses for `cond` ([B, E]), for models that accept
  // Cond::embedding; others throw.
  virtual torch::Tensor condition_embedding(const Cond& cond, int64_t batch);
};
using DenoiserPtr = std::shared_ptr<Denoiser>;

// A logit l(x_t, t, cond) that tells real (l > 0) from generated noisy samples. At the optimum of
// the logistic loss l = log(p_real,t / p_fake,t).
class Discriminator : public torch::nn::Module {
 public:
  virtual torch::Tensor logit(const torch::Tensor& xt, const torch::Tensor& t, const Cond& cond) = 0;
  // The logits of the parts the discriminator classifies one by one (patches, feature levels),
  // each [B, ...]: the GAN losses average their per-part losses. Default: the one logit [B].
  virtual std::vector<torch::Tensor> part_logits(const torch::Tensor& xt, const torch::Tensor& t, const Cond& cond) {
    return {logit(xt, t, cond)};
  }
};
using DiscriminatorPtr = std::shared_ptr<Discriminator>;
// One logit per sample [B] from part_logits: each part's mean, averaged over the parts.
torch::Tensor mean_part_logit(const std::vector<torch::Tensor>& parts);

// Parameters that require gradients (frozen bases are skipped).
std::vector<torch::Tensor> trainable_parameters(torch::nn::Module& m);
void freeze(torch::nn::Module& m);

// Classifier-free guidance: eps_null + scale (eps_cond - eps_null), both in one batched call.
// scale == 1 is a single conditional call.
torch::Tensor eps_cfg(Denoiser& model, const torch::Tensor& xt, const torch::Tensor& t, const Cond& cond,
                      double scale);

}  // namespace retort
