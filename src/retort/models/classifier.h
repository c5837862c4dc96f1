// A small CNN classifier for [N,C,R,R] images in [-1,1]. It is the "evaluator" of the image work:
// its penultimate features stand in for Inception features in FID / precision / recall (Fashion-
// MNIST is far from ImageNet, so an in-domain network is the usual choice), and its argmax scores
// whether a class-conditional student draws the class it was asked for.
#pragma once
#include <filesystem>
#include <vector>

#include <torch/torch.h>

#include "retort/core/options.h"

namespace retort {

struct ClassifierOptions {
  int64_t channels = 1, resolution = 28, width = 32, feature_dim = 128, num_classes = 10;
};
// Every ClassifierOptions member with its range: the evaluator's [evaluator] keys (width,
// feature_dim) and the metadata of saved files.
const OptionTable<ClassifierOptions>& classifier_option_table();

// conv3x3(w)-BN-ReLU, pool, conv3x3(2w)-BN-ReLU, pool, conv3x3(2w)-BN-ReLU, flatten ->
// linear(feature_dim) -> ReLU -> linear(num_classes). No dropout: every random draw of training
// then comes from retort's Rng, so a resumed run is bit-identical. The third conv runs at R/4 so a
// training step stays cheap on a CPU (~6 M multiply-adds per 28x28 image at w = 32). Pools floor odd
// sizes, so any resolution >= 4 works.
class ClassifierImpl : public torch::nn::Module {
 public:
  explicit ClassifierImpl(const ClassifierOptions& opts = {});
  // [B, feature_dim]: the post-ReLU penultimate layer.
  torch::Tensor features(const torch::Tensor& x);
  // The three convolution stages' activations (after each ReLU: [B,w,R,R], [B,2w,R/2,R/2],
  // [B,2w,R/4,R/4]): what a perceptual (LPIPS-style) distance compares.
  std::vector<torch::Tensor> conv_features(const torch::Tensor& x);
  // [B, num_classes] logits.
  torch::Tensor forward(const torch::Tensor& x);
  // The head alone: forward(x) == logits_from_features(features(x)), so an evaluation needs one pass.
  torch::Tensor logits_from_features(const torch::Tensor& features);
  const ClassifierOptions& options() const { return opts_; }

 private:
  torch::Tensor trunk(const torch::Tensor& x);
  // The conv stages (through the flatten); with `relu_outputs`, stops before the flatten and
  // collects each stage's activations.
  torch::Tensor run_convs(const torch::Tensor& x, std::vector<torch::Tensor>* relu_outputs);
  void check_input(const torch::Tensor& x) const;

  ClassifierOptions opts_;
  torch::nn::Sequential convs{nullptr};
  torch::nn::Linear fc{nullptr}, head{nullptr};
};
TORCH_MODULE(Classifier);

// Throws ConfigError naming `where` when an option is out of range.
void validate(const ClassifierOptions& opts, const std::string& where);

// safetensors with the options as JSON under the metadata key "retort.classifier".
void save_classifier(const std::filesystem::path& path, Classifier& model);
// Rebuilds from the metadata and loads strictly (on the CPU, eval mode). IoError naming the file when
// the metadata is missing or malformed or the tensors do not match.
Classifier load_classifier(const std::filesystem::path& path);

}  // namespace retort
