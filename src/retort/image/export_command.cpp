#include "retort/image/export_command.h"

#include <fmt/format.h>

#include "retort/core/error.h"
#include "retort/generators/few_step_student.h"
#include "retort/models/torchscript_export.h"

namespace retort {

std::string export_torchscript(const std::filesystem::path& in, const std::filesystem::path& out) {
  std::map<std::string, std::string> meta;
  DiffusionModelPtr model = load_diffusion_model(in, &meta);
  auto student = as_student(model, meta, in);
  ScriptContract contract;
  torch::jit::Module m;
  std::string what;
  if (auto* unet = dynamic_cast<UNetDenoiserImpl*>(model.get())) {
    m = unet_to_torchscript(*unet, &contract);
    what = "retort UNet";
  } else if (auto* script = dynamic_cast<TorchScriptModelImpl*>(model.get())) {
    if (!student)
      throw ConfigError(fmt::format("export: {} is already a TorchScript teacher; nothing to export", in.string()));
    m = script->module().clone();
    contract = script->contract();
    what = "TorchScript model";
  } else {
    throw ConfigError(fmt::format("export: {}: this kind of model cannot be exported", in.string()));
  }
  if (student) define_student_sample(m, contract, student->timesteps());
  TorchScriptModel back(m, contract, out);  // probes the export before it is written
  if (!student) {
    back->save(out);
    return fmt::format("teacher ({}): forward, features", what);
  }
  FewStepStudent exported(back.ptr(), student->timesteps());
  save_student(out, exported);
  return fmt::format("{}-step student ({}): forward, sample", student->timesteps().size(), what);
}

std::string run_export(const ExportRequest& req) {
  if (req.format != "torchscript")
    throw ConfigError(fmt::format("--format '{}': the only format is torchscript", req.format));
  if (req.out.has_parent_path() && !std::filesystem::is_directory(req.out.parent_path()))
    throw ConfigError(fmt::format("--out {}: the folder {} does not exist", req.out.string(),
                                  req.out.parent_path().string()));
  return fmt::format("wrote {}: {}", req.out.string(), export_torchscript(req.model, req.out));
}

}  // namespace retort
