#include "retort/models/diffusion_model.h"

#include <fmt/format.h>

#include <fstream>

#include "retort/core/error.h"
#include "retort/models/torchscript_model.h"
#include "retort/models/unet.h"

namespace retort {

std::vector<int64_t> ModelShape::batch(int64_t n) const {
  if (dim > 0) return {n, dim};
  if (frames > 0) return {n, frames, channels, resolution, resolution};
  return {n, channels, resolution, resolution};
}

DiffusionModel::DiffusionModel(Schedule schedule_, Prediction prediction_)
    : schedule(std::move(schedule_)), prediction(prediction_) {}

torch::Tensor DiffusionModel::eps(const torch::Tensor& xt, const torch::Tensor& t, const Cond& cond) {
  auto out = predict(xt, t, cond);
  if (prediction == Prediction::Eps) return out;
  auto abar = schedule.alpha_bar(t).to(xt.scalar_type());
  return to_eps(prediction, out, xt, abar.sqrt(), (1 - abar).clamp_min(0).sqrt());
}

torch::Tensor DiffusionModel::x0(const torch::Tensor& xt, const torch::Tensor& t, const Cond& cond) {
  auto out = predict(xt, t, cond);
  auto abar = schedule.alpha_bar(t).to(xt.scalar_type());
  auto alpha = abar.sqrt(), sigma = (1 - abar).clamp_min(0).sqrt();
  switch (prediction) {
    case Prediction::X0: return out;
    case Prediction::V: return x0_from_v(xt, out, alpha, sigma);
    default: return x0_from_eps(xt, out, alpha, sigma);
  }
}

std::vector<torch::Tensor> DiffusionModel::encode_levels(const torch::Tensor&, const torch::Tensor&, const Cond&) {
  throw Error("this model has no encoder features for a GAN head");
}

torch::Tensor DiffusionModel::encode(const torch::Tensor& xt, const torch::Tensor& t, const Cond& cond) {
  return encode_levels(xt, t, cond).back();
}

std::vector<std::vector<int64_t>> DiffusionModel::feature_shapes() {
  torch::NoGradGuard ng;
  const bool was_training = is_training();
  eval();
  const auto s = shape();
  const auto dev = device();
  Cond cond;
  if (s.num_classes > 0) cond.labels = torch::zeros({1}, torch::dtype(torch::kInt64).device(dev));
  if (s.concat_channels > 0) {
    auto c = s;
    c.channels = s.concat_channels;
    cond.concat = torch::zeros(c.batch(1), torch::dtype(torch::kFloat32).device(dev));
  }
  if (s.camera_dim > 0) cond.camera = torch::zeros({1, s.camera_dim}, torch::dtype(torch::kFloat32).device(dev));
  const auto levels = encode_levels(torch::zeros(s.batch(1), torch::dtype(torch::kFloat32).device(dev)),
                                    torch::full({1}, 0.5, torch::dtype(torch::kFloat32).device(dev)), cond);
  train(was_training);
  std::vector<std::vector<int64_t>> out;
  for (const auto& l : levels) {
    const auto sizes = l.sizes().vec();
    out.emplace_back(sizes.end() - 3, sizes.end());
  }
  return out;
}

torch::Device DiffusionModel::device() {
  for (const auto& p : parameters()) return p.device();
  for (const auto& b : buffers()) return b.device();
  return torch::kCPU;
}

bool is_torchscript_archive(const std::filesystem::path& path) {
  std::ifstream f(path, std::ios::binary);
  char magic[4] = {};
  f.read(magic, 4);
  return f.gcount() == 4 && magic[0] == 'P' && magic[1] == 'K' && magic[2] == 3 && magic[3] == 4;
}

DiffusionModelPtr load_diffusion_model(const std::filesystem::path& path, std::map<std::string, std::string>* metadata,
                                       const ScriptContract* contract) {
  if (!std::filesystem::is_regular_file(path))
    throw IoError(fmt::format("{}: no such file", path.string()));
  // A .pt file is read as TorchScript whatever it holds, so that a wrong one is named as such.
  const auto ext = path.extension().string();
  if (is_torchscript_archive(path) || ext == ".pt" || ext == ".pth")
    return load_torchscript_model(path, torch::kCPU, metadata, contract).ptr();
  if (contract)
    throw ConfigError(fmt::format("torchscript: {} is a retort model, not a TorchScript archive; the [torchscript] "
                                  "table is for TorchScript teachers", path.string()));
  return load_unet(path, metadata).ptr();
}

}  // namespace retort
