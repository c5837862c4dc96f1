// A user's diffusion model as a retort teacher: any TorchScript module (`torch.jit.script` /
// `torch.jit.trace`, saved with `torch.jit.save`) whose method
//     forward(x_t: Tensor, t: Tensor, cond: Tensor) -> Tensor
// (or another method named by `method`) predicts eps, x0 or v. The contract below says how to call
// it; it travels in the archive as the extra file "retort.json"
// (`torch.jit.save(m, path, _extra_files={"retort.json": json.dumps({...})})`) and is checked at
// load time (or given by a config's [torchscript] table instead), then the model is called once on
// a probe batch before any training.
//
// The module's parameters are registered with this torch::nn::Module under "script.<their
// TorchScript names>", as the same tensors: optimisers, checkpoints, copy_weights and .to(device)
// reach the scripted module's own weights. Copies (the fake score, the student) are clone()s of the
// scripted module.
#pragma once
#include <filesystem>
#include <string>

#include <torch/script.h>

#include "retort/models/diffusion_model.h"
#include "retort/models/script_contract.h"

namespace retort {

class TorchScriptModelImpl : public DiffusionModel {
 public:
  // Checks `method` (and `features`) against the contract and calls the model once on a probe
  // batch on `module`'s device; IoError naming `origin` and what is wrong otherwise.
  TorchScriptModelImpl(torch::jit::Module module, ScriptContract contract, std::filesystem::path origin);
  torch::Tensor predict(const torch::Tensor& xt, const torch::Tensor& t, const Cond& cond) override;
  ModelShape shape() const override;
  DiffusionModelPtr copy() override;
  std::vector<torch::Tensor> encode_levels(const torch::Tensor& xt, const torch::Tensor& t, const Cond& cond) override;
  // A TorchScript archive with retort.json and one extra file per `extra` entry.
  void save(const std::filesystem::path& path, const std::map<std::string, std::string>& extra = {}) override;
  std::string file_extension() const override { return ".pt"; }
  void train(bool on = true) override;
  const ScriptContract& contract() const { return contract_; }
  torch::jit::Module& module() { return module_; }

 private:
  std::vector<torch::jit::IValue> inputs(const torch::Tensor& xt, const torch::Tensor& t, const Cond& cond) const;
  void probe();
  torch::jit::Module module_;
  ScriptContract contract_;
  std::filesystem::path origin_;
};
TORCH_MODULE(TorchScriptModel);

// Extra files of a retort archive other than retort.json that load_torchscript_model reads back
// (the metadata save() was given): "retort.student".
const std::vector<std::string>& script_metadata_keys();
// Loads `path` onto `device`. The contract is `contract` when given (a config's [torchscript]
// table), else the archive's retort.json; `metadata` receives the script_metadata_keys() present. IoError naming the file on a file that is not a
// TorchScript archive, a missing or bad contract, a missing method, a wrong signature, or a probe
// call that fails or returns the wrong shape or dtype.
TorchScriptModel load_torchscript_model(const std::filesystem::path& path, const torch::Device& device = torch::kCPU,
                                        std::map<std::string, std::string>* metadata = nullptr,
                                        const ScriptContract* contract = nullptr);

}  // namespace retort
