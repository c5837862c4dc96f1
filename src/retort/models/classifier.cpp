#include "retort/models/classifier.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "retort/core/error.h"
#include "retort/dist/batch_norm.h"
#include "retort/io/safetensors.h"

namespace retort {
namespace {

constexpr const char* kMetadataKey = "retort.classifier";

// conv3x3-BN-ReLU appended to `seq` (LibTorch cannot nest Sequentials).
void add_conv_block(torch::nn::Sequential& seq, int64_t in, int64_t out) {
  seq->push_back(torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, 3).padding(1).bias(false)));
  seq->push_back(torch::nn::BatchNorm2d(out));
  seq->push_back(torch::nn::ReLU());
}

}  // namespace

const OptionTable<ClassifierOptions>& classifier_option_table() {
  static const auto table = [] {
    using O = ClassifierOptions;
    OptionTable<O> t;
    t.integer("channels", &O::channels, 1, 4, "image channels (set from the data set)")
        .integer("resolution", &O::resolution, 4, 4096, "image height = width (set from the data set)")
        .integer("width", &O::width, 1, 4096, "channels of the first conv (the others have twice as many)")
        .integer("feature_dim", &O::feature_dim, 1, 65536, "width of the penultimate features (FID's space)")
        .integer("num_classes", &O::num_classes, 2, 100000, "classes (set from the data set)");
    return t;
  }();
  return table;
}

void validate(const ClassifierOptions& o, const std::string& where) { classifier_option_table().validate(o, where); }

ClassifierImpl::ClassifierImpl(const ClassifierOptions& opts) : opts_(opts) {
  validate(opts_, "classifier");
  const int64_t w = opts_.width, side = opts_.resolution / 4;
  torch::nn::Sequential seq;
  add_conv_block(seq, opts_.channels, w);
  seq->push_back(torch::nn::MaxPool2d(2));
  add_conv_block(seq, w, 2 * w);
  seq->push_back(torch::nn::MaxPool2d(2));
  add_conv_block(seq, 2 * w, 2 * w);
  seq->push_back(torch::nn::Flatten());
  convs = register_module("convs", seq);
  fc = register_module("fc", torch::nn::Linear(2 * w * side * side, opts_.feature_dim));
  head = register_module("head", torch::nn::Linear(opts_.feature_dim, opts_.num_classes));
}

void ClassifierImpl::check_input(const torch::Tensor& x) const {
  if (x.dim() != 4 || x.size(1) != opts_.channels || x.size(2) != opts_.resolution || x.size(3) != opts_.resolution)
    throw Error(fmt::format("classifier: expected images [N, {}, {}, {}]; got {}", opts_.channels, opts_.resolution,
                            opts_.resolution, c10::str(x.sizes())));
}

torch::Tensor ClassifierImpl::run_convs(const torch::Tensor& x, std::vector<torch::Tensor>* relu_outputs) {
  check_input(x);
  auto h = x;
  for (auto& m : *convs) {
    if (relu_outputs && m.ptr()->as<torch::nn::FlattenImpl>()) break;
    // Data parallelism: in training each rank normalises with the global batch's statistics.
    if (auto* bn = m.ptr()->as<torch::nn::BatchNorm2dImpl>()) h = batch_norm_over_ranks(*bn, h);
    else h = m.forward(h);
    if (relu_outputs && m.ptr()->as<torch::nn::ReLUImpl>()) relu_outputs->push_back(h);
  }
  return h;
}

torch::Tensor ClassifierImpl::trunk(const torch::Tensor& x) { return torch::relu(fc(run_convs(x, nullptr))); }

torch::Tensor ClassifierImpl::features(const torch::Tensor& x) { return trunk(x); }

std::vector<torch::Tensor> ClassifierImpl::conv_features(const torch::Tensor& x) {
  std::vector<torch::Tensor> out;
  run_convs(x, &out);
  return out;
}

torch::Tensor ClassifierImpl::logits_from_features(const torch::Tensor& f) { return head(f); }

torch::Tensor ClassifierImpl::forward(const torch::Tensor& x) { return logits_from_features(trunk(x)); }

void save_classifier(const std::filesystem::path& path, Classifier& model) {
  save_module(path, *model, {{kMetadataKey, classifier_option_table().to_json(model->options()).dump()}});
}

Classifier load_classifier(const std::filesystem::path& path) {
  std::map<std::string, std::string> meta;
  const auto tensors = load_safetensors(path, &meta);
  auto it = meta.find(kMetadataKey);
  if (it == meta.end())
    throw IoError(fmt::format("{}: no '{}' metadata; not a classifier written by retort", path.string(), kMetadataKey));
  ClassifierOptions o;
  try {
    auto j = nlohmann::json::parse(it->second);
    classifier_option_table().require_keys(j);
    classifier_option_table().from_json(j, o);
    validate(o, path.string() + ": metadata");
  } catch (const nlohmann::json::exception& e) {
    throw IoError(fmt::format("{}: malformed '{}' metadata: {}", path.string(), kMetadataKey, e.what()));
  } catch (const ConfigError& e) {
    throw IoError(e.what());
  } catch (const IoError& e) {
    throw IoError(fmt::format("{}: malformed '{}' metadata: {}", path.string(), kMetadataKey, e.what()));
  }
  // As load_unet: no network far larger than the file is built. A lower bound on its parameters: the
  // two 3x3 convolutions at 2w and the linear layer on the flattened R/4 x R/4 features.
  const double w2 = 2.0 * o.width, side = double(o.resolution / 4);
  const double at_least = 9.0 * w2 * w2 + w2 * side * side * double(o.feature_dim);
  double held = 0;
  for (const auto& [name, t] : tensors) held += double(t.numel());
  if (at_least > held)
    throw IoError(fmt::format("{}: its '{}' metadata describes a network of at least {:.0f} parameters; the file "
                              "holds {:.0f} values", path.string(), kMetadataKey, at_least, held));
  Classifier model(o);
  load_module(path, *model);
  model->eval();
  return model;
}

}  // namespace retort
