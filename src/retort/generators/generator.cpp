#include "retort/generators/generator.h"

#include "retort/core/error.h"

namespace retort {

torch::Tensor draw_labels(const std::vector<int64_t>& classes, const std::vector<double>& weights, int64_t n,
                          Rng& rng, const torch::Device& device) {
  if (classes.empty()) return {};
  auto idx = rng.categorical(torch::tensor(weights, torch::kDouble), n);
  return torch::tensor(classes, torch::kLong).index_select(0, idx).to(device);
}

GenBatch Generator::draw(int64_t batch, const Share& share, Rng& rng) {
  if (!share.whole()) throw Error(name() + " does not train data-parallel; run it on one process");
  return draw(batch, rng);
}

ParticleGeneratorImpl::ParticleGeneratorImpl(int64_t count, int64_t dim, double init_std,
                                             const std::vector<int64_t>& classes,
                                             const std::vector<double>& class_weights, Rng& rng) {
  particles = register_parameter("particles", rng.randn({count, dim}) * init_std);
  if (!classes.empty()) {
    // Deterministic proportional assignment so every class keeps its share of particles.
    std::vector<int64_t> lab;
    double total = 0;
    for (double w : class_weights) total += w;
    double acc = 0;
    size_t c = 0;
    for (int64_t i = 0; i < count; ++i) {
      while (c + 1 < classes.size() && (i + 0.5) / count > (acc + class_weights[c]) / total) acc += class_weights[c++];
      lab.push_back(classes[c]);
    }
    labels_ = register_buffer("labels", torch::tensor(lab, torch::kLong));
  }
}

GenBatch ParticleGeneratorImpl::draw(int64_t batch, Rng& rng) {
  const int64_t n = particles.size(0);
  if (batch >= n) return {particles, Cond::classes(labels_)};
  auto idx = rng.randint(0, n, {batch}, particles.device());
  Cond c;
  if (labels_.defined()) c.labels = labels_.index_select(0, idx);
  return {particles.index_select(0, idx), c};
}

GenBatch ParticleGeneratorImpl::draw_eval(int64_t, Rng&) {
  return {particles.detach().clone(), Cond::classes(labels_)};
}

OneStepGeneratorImpl::OneStepGeneratorImpl(const OneStepOptions& opts, std::vector<int64_t> classes,
                                           std::vector<double> weights)
    : opts_(opts), classes_(std::move(classes)), weights_(std::move(weights)) {
  MlpOptions m;
  m.dim = opts.latent_dim;
  m.out_dim = opts.dim;
  m.hidden = opts.hidden;
  m.blocks = opts.blocks;
  m.num_classes = opts.num_classes;
  net = register_module("net", MlpTrunk(m));
}

torch::Tensor OneStepGeneratorImpl::forward(const torch::Tensor& z, const Cond& cond) {
  // The trunk's time input is fixed (t = 1: the generator maps pure noise to data).
  return net->forward(z, torch::ones({z.size(0)}, z.options()), cond);
}

GenBatch OneStepGeneratorImpl::draw(int64_t batch, Rng& rng) {
  auto device = net->parameters().front().device();
  auto z = rng.randn({batch, opts_.latent_dim}, device);
  Cond c{draw_labels(classes_, weights_, batch, rng, device), {}, {}};
  return {forward(z, c), c};
}

GenBatch OneStepGeneratorImpl::draw_eval(int64_t n, Rng& rng) {
  torch::NoGradGuard ng;
  return draw(n, rng);
}

std::vector<std::string> generator_names() { return {"particles", "network"}; }

}  // namespace retort
