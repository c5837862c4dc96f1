// What the few-step pipelines need of a diffusion model of images or videos, whatever network
// computes it: the raw prediction over a schedule, the data's shape, trainable copies of itself
// (the fake score and the student start as the teacher), encoder features for a GAN head, and a
// file format. Two kinds: retort's own UNet (models/unet.h, a .safetensors file) and a user's
// TorchScript module (models/torchscript_model.h, a .pt archive).
#pragma once
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "retort/diffusion/parameterization.h"
#include "retort/diffusion/schedule.h"
#include "retort/models/denoiser.h"
#include "retort/models/script_contract.h"

namespace retort {

// The shape of one sample and what a model is conditioned on.
struct ModelShape {
  int64_t channels = 1;
  int64_t resolution = 0;       // height = width
  int64_t frames = 0;           // > 0: a video model over [B, frames, channels, H, W]
  int64_t num_classes = 0;      // 0: unconditional
  int64_t concat_channels = 0;  // Cond::concat channels (point-cloud renders)
  int64_t camera_dim = 0;       // Cond::camera width
  int64_t dim = 0;              // > 0: points [n, dim] instead of images (a model of a mixture)
  // [n, channels, R, R], [n, frames, channels, R, R], or [n, dim].
  std::vector<int64_t> batch(int64_t n) const;
};

class DiffusionModel;
using DiffusionModelPtr = std::shared_ptr<DiffusionModel>;

class DiffusionModel : public Denoiser {
 public:
  DiffusionModel(Schedule schedule, Prediction prediction);
  // The network's output in units of `prediction`.
  virtual torch::Tensor predict(const torch::Tensor& xt, const torch::Tensor& t, const Cond& cond) = 0;
  torch::Tensor eps(const torch::Tensor& xt, const torch::Tensor& t, const Cond& cond) override;
  // x0 prediction (from v directly when the model predicts v, which stays exact at t = 1).
  torch::Tensor x0(const torch::Tensor& xt, const torch::Tensor& t, const Cond& cond);
  virtual ModelShape shape() const = 0;
  // A trainable copy with the same weights, on the same device.
  virtual DiffusionModelPtr copy() = 0;
  // The features of every encoder level, the bottleneck last (what the GAN heads of
  // models/feature_discriminator.h read). Models without them throw an Error saying so.
  virtual std::vector<torch::Tensor> encode_levels(const torch::Tensor& xt, const torch::Tensor& t,
                                                   const Cond& cond);
  // The bottleneck alone (default: the last of encode_levels).
  virtual torch::Tensor encode(const torch::Tensor& xt, const torch::Tensor& t, const Cond& cond);
  // Each level's [channels, height, width] (a video model's per frame), from one call of
  // encode_levels on a zero sample in eval mode (no random draws).
  std::vector<std::vector<int64_t>> feature_shapes();
  // Writes the model to `path` with `extra` metadata (e.g. a student's timesteps), in its own format.
  virtual void save(const std::filesystem::path& path, const std::map<std::string, std::string>& extra = {}) = 0;
  // ".safetensors" or ".pt": the extension of files save() writes.
  virtual std::string file_extension() const = 0;
  torch::Device device();

  Schedule schedule;
  Prediction prediction;
};

// A TorchScript archive (a zip file; `torch.jit.save`) rather than a safetensors file.
bool is_torchscript_archive(const std::filesystem::path& path);
// Loads either kind by the file's content (a .pt or .pth file is always read as TorchScript);
// `metadata` receives the file's extra metadata (a student's timesteps). Errors name the file and
// what is wrong.
// `contract` (a config's [torchscript] table) replaces a TorchScript archive's retort.json; given
// for a retort UNet file it is a ConfigError.
DiffusionModelPtr load_diffusion_model(const std::filesystem::path& path,
                                       std::map<std::string, std::string>* metadata = nullptr,
                                       const ScriptContract* contract = nullptr);

}  // namespace retort
