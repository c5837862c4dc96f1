// N image particles as a score-distillation generator (ProlificDreamer's and ASD's 2-D setting):
// the particles themselves are the parameters, each with the class label of its prompt. A draw is
// a random subset of them (all of them when the batch is at least their number).
#pragma once
#include <string>
#include <vector>

#include "retort/generators/generator.h"

namespace retort {

class ImageParticlesImpl : public Generator {
 public:
  // labels int64 [N]: particle i is conditioned on labels[i]; particles start N(0, init_std^2).
  ImageParticlesImpl(const torch::Tensor& labels, int64_t channels, int64_t resolution, double init_std, Rng& rng);
  // `batch` distinct particles drawn at random (every particle, in order, when batch >= N).
  GenBatch draw(int64_t batch, Rng& rng) override;
  GenBatch draw_eval(int64_t n, Rng& rng) override;  // every particle (n ignored), no graph
  int64_t count() const { return particles.size(0); }
  torch::Tensor particles;  // [N, C, R, R]
  torch::Tensor labels;     // [N]
};
TORCH_MODULE(ImageParticles);

// The Fashion-MNIST class names, in label order ("t-shirt", "trouser", ..., "ankle boot").
const std::vector<std::string>& fashion_mnist_class_names();

// The label of each of `count` particles of `prompt` for a teacher with `num_classes` classes:
//  * a class id ("7") for any class-conditional teacher;
//  * a Fashion-MNIST class name for a 10-class teacher (case-insensitive; "t-shirt/top" too);
//  * a world prompt for the world teacher's prompt classes: with a view suffix every particle
//    takes that view, without one the particles take the views in turn (front, side, back, overhead).
// Throws ConfigError naming the prompt and what the teacher accepts.
std::vector<int64_t> prompt_labels(const std::string& prompt, int64_t num_classes, int64_t count);
// Whether `prompt` can name a class of some teacher (config-time check); the message otherwise.
std::string prompt_problem(const std::string& prompt);
// A short name for file and row names: "sneaker", "red-torus-front".
std::string prompt_slug(const std::string& prompt);

}  // namespace retort
