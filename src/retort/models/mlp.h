// Small MLP networks over flat vectors, conditioned on time, class (with a null class for CFG),
// an optional condition embedding that replaces the class's (textual inversion), and an optional
// camera vector. One trunk serves the denoiser and the discriminator.
#pragma once
#include <torch/torch.h>

#include "retort/diffusion/parameterization.h"
#include "retort/diffusion/schedule.h"
#include "retort/models/denoiser.h"
#include "retort/models/lora.h"

namespace retort {

struct MlpOptions {
  int64_t dim = 2;          // input (data) dimension
  int64_t out_dim = 0;      // 0: same as dim
  int64_t hidden = 128;
  int64_t blocks = 3;       // residual blocks
  int64_t time_dim = 64;    // sinusoidal time features
  int64_t num_classes = 0;  // 0: unconditional
  int64_t cond_dim = 32;    // class / condition embedding width
  int64_t camera_dim = 0;   // 0: no camera input
  bool zero_out = false;    // zero-initialise the output layer (residual "delta" models)
};

// Sinusoidal features of t in [0, 1] (scaled to 1000 like DDPM's integer steps).
torch::Tensor time_features(const torch::Tensor& t, int64_t dim);

class MlpTrunkImpl : public torch::nn::Module {
 public:
  explicit MlpTrunkImpl(const MlpOptions& opts);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& t, const Cond& cond);
  // The embedding the model uses for a condition ([B, cond_dim]); defined only with classes.
  torch::Tensor condition_embedding(const Cond& cond, int64_t batch);
  const MlpOptions& options() const { return opts_; }

 private:
  MlpOptions opts_;
  torch::nn::Linear time_proj{nullptr}, cond_proj{nullptr}, camera_proj{nullptr};
  torch::nn::Embedding class_embed{nullptr};
  LoraLinear in_proj{nullptr}, out_proj{nullptr};
  torch::nn::ModuleList block_in, block_time, block_out;
};
TORCH_MODULE(MlpTrunk);

class MlpDenoiserImpl : public Denoiser {
 public:
  MlpDenoiserImpl(const MlpOptions& opts, Schedule schedule, Prediction prediction = Prediction::Eps);
  torch::Tensor eps(const torch::Tensor& xt, const torch::Tensor& t, const Cond& cond) override;
  torch::Tensor condition_embedding(const Cond& cond, int64_t batch) override;
  // The raw network output (in the units of `prediction`).
  torch::Tensor forward(const torch::Tensor& xt, const torch::Tensor& t, const Cond& cond);
  MlpTrunk trunk{nullptr};
  Prediction prediction;
  Schedule schedule;
};
TORCH_MODULE(MlpDenoiser);

class MlpDiscriminatorImpl : public Discriminator {
 public:
  explicit MlpDiscriminatorImpl(MlpOptions opts);
  torch::Tensor logit(const torch::Tensor& xt, const torch::Tensor& t, const Cond& cond) override;
  MlpTrunk trunk{nullptr};
};
TORCH_MODULE(MlpDiscriminator);

}  // namespace retort
