// Image-sample metrics in the feature space of an in-domain classifier (models/classifier.h):
// Fréchet distance (FID with our features in place of Inception's), k-NN precision and recall
// (Kynkäänniemi et al. 2019), and class accuracy of class-conditional samples. Numbers are only
// comparable between runs that use the same evaluator file and the same sample count.
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>

#include <torch/torch.h>

#include "retort/models/classifier.h"

namespace retort {

// Penultimate features [N, feature_dim] (float, CPU) of images [N,C,R,R] in [-1,1], `batch` at a time,
// on the model's device, without gradients and in eval mode (the model's mode is restored).
torch::Tensor classifier_features(Classifier& model, const torch::Tensor& images, int64_t batch = 500);

// ||mu_a - mu_b||^2 + tr(S_a) + tr(S_b) - 2 tr sqrt(S_a S_b) of feature matrices [N, D] (rows may
// differ), in float64 with unbiased covariances. tr sqrt(S_a S_b) = sum sqrt(eig(S_a^1/2 S_b S_a^1/2))
// with symmetric eigendecompositions, so it stays real and stable for singular covariances.
// Error for fewer than 2 rows or different D; NaN when a feature is not finite.
double frechet_distance(const torch::Tensor& a, const torch::Tensor& b);

struct PrecisionRecall {
  double precision = 0, recall = 0;
};

// precision: fraction of fake rows inside the k-NN ball of some real row (ball radius = distance to
// the row's k-th nearest other real row); recall: fraction of real rows inside some fake row's ball.
// Distances are computed in row chunks, so 10k x 10k needs ~100 MB. Error for fewer than k + 1 rows
// in either set, different D, or k < 1.
PrecisionRecall precision_recall(const torch::Tensor& real, const torch::Tensor& fake, int64_t k = 3);

struct ImageEval {
  int64_t n = 0;
  double fid = 0, precision = 0, recall = 0;
  double class_accuracy = 0;  // NaN when no labels were given
};

// images [N,C,R,R] in [-1,1]; labels int64 [N] (the class each image was generated for) or undefined;
// reference_features from classifier_features of real data with the same model.
ImageEval evaluate_images(Classifier& model, const torch::Tensor& images, const torch::Tensor& labels,
                          const torch::Tensor& reference_features, int64_t k = 3);

// One-row markdown table: n, FID, precision, recall, class accuracy.
std::string image_eval_markdown(const ImageEval& e);

// Images (and labels when present) from a safetensors file holding "images" float [N,C,H,W] and
// optionally "labels" int64 [N]. IoError naming the file for a missing/ill-shaped tensor.
void load_image_file(const std::filesystem::path& path, torch::Tensor* images, torch::Tensor* labels);

}  // namespace retort
