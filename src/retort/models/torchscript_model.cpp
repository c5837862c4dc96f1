#include "retort/models/torchscript_model.h"

#include <fmt/format.h>
#include <fmt/ranges.h>  // fmt::join ({fmt} 11 moved it here)

#include <nlohmann/json.hpp>

#include <fstream>
#include <sstream>

#include "retort/core/error.h"
#include "retort/io/atomic_file.h"

namespace retort {

namespace fs = std::filesystem;

const std::vector<std::string>& script_metadata_keys() {
  static const std::vector<std::string> keys{"retort.student"};
  return keys;
}

namespace {

// "name(Tensor x_t, Tensor t, Tensor cond) -> Tensor" checks: three Tensor arguments after self,
// the given return type.
void check_signature(const torch::jit::Module& m, const std::string& name, const std::string& returns,
                     const fs::path& origin) {
  auto method = m.find_method(name);
  if (!method) {
    std::vector<std::string> have;
    for (const auto& f : m.get_methods()) have.push_back(f.name());
    throw IoError(fmt::format("{}: the module has no method '{}' (it has: {}; retort.json 'method' / 'features' "
                              "name the methods to call)", origin.string(), name, fmt::join(have, ", ")));
  }
  const auto& schema = method->function().getSchema();
  const auto& args = schema.arguments();
  std::string got = schema.name() + "(";
  bool ok = args.size() == 4;
  for (size_t i = 1; i < args.size(); ++i) {
    got += (i > 1 ? ", " : "") + args[i].name() + ": " + args[i].type()->annotation_str();
    ok = ok && args[i].type()->kind() == c10::TypeKind::TensorType;
  }
  got += ") -> ";
  const auto& outs = schema.returns();
  got += outs.size() == 1 ? outs[0].type()->annotation_str() : "(" + std::to_string(outs.size()) + " values)";
  ok = ok && outs.size() == 1 && outs[0].type()->annotation_str() == returns;
  if (!ok)
    throw IoError(fmt::format("{}: method '{}' is {}; retort calls {}(x_t: Tensor, t: Tensor, cond: Tensor) -> {}",
                              origin.string(), name, got, name, returns));
}

}  // namespace

TorchScriptModelImpl::TorchScriptModelImpl(torch::jit::Module module, ScriptContract contract, fs::path origin)
    : DiffusionModel(Schedule(contract.schedule), contract.prediction),
      module_(std::move(module)),
      contract_(std::move(contract)),
      origin_(std::move(origin)) {
  if (contract_.resolution < 1 && contract_.dim < 1)
    throw IoError(fmt::format("{}: the contract gives neither resolution (images) nor dim (points)", origin_.string()));
  check_signature(module_, contract_.method, "Tensor", origin_);
  if (!contract_.features.empty()) check_signature(module_, contract_.features, "List[Tensor]", origin_);
  // The scripted module's tensors, registered under their dotted names as a tree of plain modules.
  auto script = register_module("script", std::make_shared<torch::nn::Module>("script"));
  auto owner = [&](const std::string& dotted, std::string* leaf) {
    std::shared_ptr<torch::nn::Module> m = script;
    size_t start = 0;
    for (size_t dot; (dot = dotted.find('.', start)) != std::string::npos; start = dot + 1) {
      const auto name = dotted.substr(start, dot - start);
      auto children = m->named_children();
      auto* found = children.find(name);
      m = found ? *found : m->register_module(name, std::make_shared<torch::nn::Module>(name));
    }
    *leaf = dotted.substr(start);
    return m;
  };
  std::string leaf;
  for (const auto& p : module_.named_parameters(true)) {
    auto m = owner(p.name, &leaf);
    m->register_parameter(leaf, p.value, p.value.requires_grad());
  }
  for (const auto& b : module_.named_buffers(true)) {
    auto m = owner(b.name, &leaf);
    m->register_buffer(leaf, b.value);
  }
  train(false);  // frozen teachers are in eval mode; the trainers switch their copies on
  probe();
}

std::vector<torch::jit::IValue> TorchScriptModelImpl::inputs(const torch::Tensor& xt, const torch::Tensor& t,
                                                              const Cond& cond) const {
  // As a retort UNet without a camera map does, the model ignores a camera it cannot read.
  if (cond.embedding.defined())
    throw Error(fmt::format("{}: a TorchScript model takes no learned condition embedding", origin_.string()));
  if (cond.concat.defined() != (contract_.concat_channels > 0))
    throw Error(fmt::format("{}: the model reads {} render channels; {} given", origin_.string(),
                            contract_.concat_channels, cond.concat.defined() ? "some were" : "none were"));
  const int64_t B = xt.size(0);
  const auto device = xt.device();
  torch::Tensor time = t.to(device, torch::kFloat32).reshape({B});
  if (contract_.time == "discrete") {
    const int64_t T = contract_.schedule.steps;
    time = (time * double(T)).round().sub(1).clamp(0, T - 1).to(torch::kInt64);
  }
  const int64_t null = contract_.null_class >= 0 ? contract_.null_class : contract_.num_classes;
  torch::Tensor labels = cond.labels.defined() ? cond.labels.to(device, torch::kInt64)
                                               : torch::full({B}, kNullClass, torch::dtype(torch::kInt64).device(device));
  labels = torch::where(labels == kNullClass, torch::full_like(labels, null), labels);
  if (contract_.concat_channels > 0) return {xt, time, cond.concat.to(xt.options())};
  return {xt, time, labels};
}

torch::Tensor TorchScriptModelImpl::predict(const torch::Tensor& xt, const torch::Tensor& t, const Cond& cond) {
  auto out = module_.get_method(contract_.method)(inputs(xt, t, cond));
  return out.toTensor();
}

std::vector<torch::Tensor> TorchScriptModelImpl::encode_levels(const torch::Tensor& xt, const torch::Tensor& t,
                                                               const Cond& cond) {
  if (contract_.features.empty())
    throw Error(fmt::format("{}: this method's GAN head reads encoder features, and retort.json names no "
                            "'features' method (x_t, t, cond) -> List[Tensor] in the model",
                            origin_.string()));
  auto list = module_.get_method(contract_.features)(inputs(xt, t, cond)).toTensorList();
  std::vector<torch::Tensor> out;
  for (size_t i = 0; i < list.size(); ++i) out.push_back(list.get(i));
  return out;
}

void TorchScriptModelImpl::probe() {
  torch::NoGradGuard ng;
  const auto s = shape();
  torch::Device device = torch::kCPU;
  for (const auto& p : module_.parameters()) {
    device = p.device();
    break;
  }
  auto x = torch::randn(s.batch(2), torch::dtype(torch::kFloat32).device(device));
  auto t = torch::full({2}, 0.5, torch::dtype(torch::kFloat32).device(device));
  auto labels = torch::tensor({contract_.num_classes > 0 ? int64_t(0) : kNullClass, kNullClass},
                              torch::dtype(torch::kInt64).device(device));
  Cond cond = Cond::classes(labels);
  if (contract_.concat_channels > 0) {
    auto c = s;
    c.channels = s.concat_channels;
    cond.concat = torch::zeros(c.batch(2), torch::dtype(torch::kFloat32).device(device));
  }
  auto what = [&](const std::string& m) {
    return fmt::format("{}: the probe call {}(x_t {}, t {}, cond {})", origin_.string(), m,
                       fmt::format("[{}]", fmt::join(x.sizes(), ",")), contract_.time == "discrete" ? "int64 [2]" : "float [2]",
                       cond.concat.defined() ? fmt::format("float [{}]", fmt::join(cond.concat.sizes(), ","))
                                             : std::string("int64 [2]"));
  };
  torch::IValue out;
  try {
    out = module_.get_method(contract_.method)(inputs(x, t, cond));
  } catch (const std::exception& e) {
    std::string msg = e.what();
    throw IoError(fmt::format("{} failed: {}", what(contract_.method), msg.substr(0, msg.find('\n'))));
  }
  if (!out.isTensor()) throw IoError(fmt::format("{} returned no tensor", what(contract_.method)));
  const auto y = out.toTensor();
  if (y.sizes() != x.sizes() || y.scalar_type() != torch::kFloat32 || y.device() != x.device())
    throw IoError(fmt::format("{} returned a {} [{}] tensor on {}; expected float32 [{}] on {} (retort.json: channels, "
                              "resolution)", what(contract_.method), c10::toString(y.scalar_type()),
                              fmt::join(y.sizes(), ","), y.device().str(), fmt::join(x.sizes(), ","), x.device().str()));
  if (!contract_.features.empty()) {
    std::vector<torch::Tensor> f;
    try {
      f = encode_levels(x, t, cond);
    } catch (const std::exception& e) {
      std::string msg = e.what();
      throw IoError(fmt::format("{} failed: {}", what(contract_.features), msg.substr(0, msg.find('\n'))));
    }
    for (const auto& level : f)
      if (level.dim() != (s.frames > 0 ? 5 : 4) || level.size(0) != 2)
        throw IoError(fmt::format("{} returned a level of shape [{}]; expected [2, {}C, H, W] each",
                                  what(contract_.features), fmt::join(level.sizes(), ","), s.frames > 0 ? "K, " : ""));
    if (f.empty()) throw IoError(fmt::format("{} returned no features", what(contract_.features)));
  }
}

ModelShape TorchScriptModelImpl::shape() const {
  ModelShape s;
  s.channels = contract_.channels;
  s.resolution = contract_.resolution;
  s.num_classes = contract_.num_classes;
  s.dim = contract_.dim;
  s.frames = contract_.frames;
  s.concat_channels = contract_.concat_channels;
  return s;
}

DiffusionModelPtr TorchScriptModelImpl::copy() {
  auto m = std::make_shared<TorchScriptModelImpl>(module_.clone(), contract_, origin_);
  for (auto& p : m->parameters()) p.set_requires_grad(true);
  m->train(true);  // as a new torch::nn::Module starts
  return m;
}

void TorchScriptModelImpl::train(bool on) {
  torch::nn::Module::train(on);
  module_.train(on);
}

void TorchScriptModelImpl::save(const fs::path& path, const std::map<std::string, std::string>& extra) {
  torch::jit::ExtraFilesMap files{{"retort.json", script_contract_table().to_json(contract_).dump(2)}};
  for (const auto& [k, v] : extra) files[k] = v;
  std::ostringstream bytes;
  module_.save(bytes, files);
  const auto data = bytes.str();
  write_file_atomically(path, [&](const fs::path& tmp) {
    std::ofstream f(tmp, std::ios::binary);
    f.write(data.data(), std::streamsize(data.size()));
    if (!f) throw IoError(fmt::format("{}: cannot write", tmp.string()));
  });
}

TorchScriptModel load_torchscript_model(const fs::path& path, const torch::Device& device,
                                        std::map<std::string, std::string>* metadata, const ScriptContract* contract) {
  torch::jit::ExtraFilesMap files{{"retort.json", ""}};
  for (const auto& k : script_metadata_keys()) files[k] = "";
  torch::jit::Module module;
  try {
    module = torch::jit::load(path.string(), device, files);
  } catch (const std::exception& e) {
    std::string msg = e.what();
    throw IoError(fmt::format("{}: not a TorchScript archive that this LibTorch ({}) can read: {}", path.string(),
                              TORCH_VERSION, msg.substr(0, msg.find('\n'))));
  }
  ScriptContract c;
  if (contract) {
    c = *contract;
  } else {
    if (files["retort.json"].empty())
      throw IoError(fmt::format("{}: the archive has no extra file 'retort.json' declaring how to call it (keys: "
                                "prediction, time, schedule, schedule_steps, channels, resolution, num_classes; save "
                                "it with torch.jit.save(m, path, _extra_files={{\"retort.json\": ...}}), or give "
                                "them in the config's [torchscript] table)",
                                path.string()));
    try {
      c = parse_script_contract(files["retort.json"]);
    } catch (const std::exception& e) {
      throw IoError(fmt::format("{}: retort.json: {}", path.string(), e.what()));
    }
  }
  if (metadata) {
    metadata->clear();
    for (const auto& k : script_metadata_keys())
      if (!files[k].empty()) (*metadata)[k] = files[k];
  }
  return TorchScriptModel(std::move(module), std::move(c), path);
}

}  // namespace retort
