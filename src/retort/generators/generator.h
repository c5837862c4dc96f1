// What score distillation optimises: something that produces clean samples x0 with gradients.
// (a) particles: N free samples (ProlificDreamer's particles, ASD's 2-D setting);
// (b) a one-step network z -> x0 (DMD's setting). Few-step students and radiance fields implement
// the same interface.
#pragma once
#include <string>
#include <vector>

#include <torch/torch.h>

#include "retort/core/rng.h"
#include "retort/models/denoiser.h"
#include "retort/models/mlp.h"

namespace retort {

struct GenBatch {
  torch::Tensor x0;
  Cond cond;
};

// This process's share of a global batch under data parallelism (dist/world.h): rank `rank` of
// `ranks` computes rows [n * rank / ranks, n * (rank + 1) / ranks) of a batch of n. The randomness
// of the whole batch is drawn from the one stream, so every rank's rows, and their union, are what
// one process would compute.
struct Share {
  int64_t rank = 0, ranks = 1;
  bool whole() const { return ranks == 1; }
  int64_t begin(int64_t n) const { return n * rank / ranks; }
  int64_t size(int64_t n) const { return n * (rank + 1) / ranks - begin(n); }
  torch::Tensor rows(const torch::Tensor& x) const { return whole() ? x : x.narrow(0, begin(x.size(0)), size(x.size(0))); }
  Cond rows(const Cond& c, int64_t n, const torch::Device& device) const {
    return whole() ? c : c.slice(begin(n), size(n), device);
  }
};

class Generator : public torch::nn::Module {
 public:
  // A batch of samples carrying the generator's graph.
  virtual GenBatch draw(int64_t batch, Rng& rng) = 0;
  // This process's rows of a batch of `batch` (Share): the draws of the whole batch, the
  // computation of the rows. Generators that do not train data-parallel refuse a partial share.
  virtual GenBatch draw(int64_t batch, const Share& share, Rng& rng);
  // n samples for evaluation (no graph).
  virtual GenBatch draw_eval(int64_t n, Rng& rng) = 0;
  // The generator's own penalty, added to the generator loss: a radiance field's opacity
  // regularisers on its last draw, a student's regression onto teacher pairs (drawn from `rng`,
  // this process's share of them). Undefined when there is none.
  virtual torch::Tensor regularization(Rng& rng, const Share& share) { return {}; }
  // Called by the training loop before iteration `step` of `steps` (and with step = steps at the
  // end), for schedules inside the generator (a radiance field's coarse-to-fine levels). A resumed
  // run calls it with the restored step, so the schedule resumes too.
  virtual void set_progress(int64_t step, int64_t steps) {}
};
using GeneratorPtr = std::shared_ptr<Generator>;

// Labels drawn from class weights; undefined when `classes` is empty (unconditional).
torch::Tensor draw_labels(const std::vector<int64_t>& classes, const std::vector<double>& weights, int64_t n,
                          Rng& rng, const torch::Device& device);

class ParticleGeneratorImpl : public Generator {
 public:
  // `count` particles initialised N(0, init_std^2); labels assigned in proportion to class weights.
  ParticleGeneratorImpl(int64_t count, int64_t dim, double init_std, const std::vector<int64_t>& classes,
                        const std::vector<double>& class_weights, Rng& rng);
  GenBatch draw(int64_t batch, Rng& rng) override;   // a random subset (all when batch >= count)
  GenBatch draw_eval(int64_t n, Rng& rng) override;  // all particles (n ignored)
  torch::Tensor particles;

 private:
  torch::Tensor labels_;
};
TORCH_MODULE(ParticleGenerator);

struct OneStepOptions {
  int64_t dim = 2;
  int64_t latent_dim = 2;
  int64_t hidden = 128;
  int64_t blocks = 3;
  int64_t num_classes = 0;
};

class OneStepGeneratorImpl : public Generator {
 public:
  OneStepGeneratorImpl(const OneStepOptions& opts, std::vector<int64_t> classes, std::vector<double> weights);
  torch::Tensor forward(const torch::Tensor& z, const Cond& cond);
  GenBatch draw(int64_t batch, Rng& rng) override;
  GenBatch draw_eval(int64_t n, Rng& rng) override;
  MlpTrunk net{nullptr};

 private:
  OneStepOptions opts_;
  std::vector<int64_t> classes_;
  std::vector<double> weights_;
};
TORCH_MODULE(OneStepGenerator);

std::vector<std::string> generator_names();  // particles, network

}  // namespace retort
