// The exact teacher: a Gaussian mixture target whose every noisy marginal is known in closed form
// (methods.md section 1). x_t ~ sum_k pi_k N(alpha mu_k, alpha^2 Sigma_k + sigma^2 I), so the score,
// eps = -sigma grad log p_t, log p_t and exact samples are all available: ground truth for every
// distillation objective.
#pragma once
#include <vector>

#include <torch/torch.h>

#include "retort/core/rng.h"
#include "retort/diffusion/schedule.h"
#include "retort/models/denoiser.h"

namespace retort {

struct MixtureComponent {
  std::vector<double> mean;
  std::vector<std::vector<double>> cov;  // D x D, symmetric positive definite
  double weight = 1.0;                   // unnormalised
  int64_t cls = kNullClass;              // class label for conditional targets
};

// K isotropic modes evenly spaced on a circle in the first two coordinates (optionally one class each).
std::vector<MixtureComponent> ring_components(int64_t modes, int64_t dim, double radius, double std, bool classes);

class GaussianMixture {
 public:
  // Validates shapes, positive weights and positive-definite covariances; throws ConfigError
  // naming the component index.
  explicit GaussianMixture(const std::vector<MixtureComponent>& components);
  static GaussianMixture ring(int64_t modes, int64_t dim, double radius, double std, bool classes) {
    return GaussianMixture(ring_components(modes, dim, radius, std, classes));
  }

  int64_t dim() const { return dim_; }
  int64_t num_components() const { return means_.size(0); }
  // Distinct class labels (empty for an unconditional target).
  const std::vector<int64_t>& classes() const { return class_list_; }
  std::vector<double> class_weights() const;
  const torch::Tensor& means() const { return means_; }
  const torch::Tensor& weights() const { return weights_; }
  const torch::Tensor& component_classes() const { return classes_; }
  const torch::Tensor& eigvecs() const { return eigvecs_; }
  const torch::Tensor& eigvals() const { return eigvals_; }

  // Exact samples of the clean target; with labels, each sample from its class's sub-mixture.
  // Returns x [n, D]; `components` (if given) receives the component index of each sample.
  torch::Tensor sample(int64_t n, Rng& rng, const torch::Tensor& labels = {},
                       torch::Tensor* components = nullptr) const;
  // log p_t(x | labels) of the noisy marginal (alpha, sigma per sample [B]); differentiable.
  torch::Tensor log_prob(const torch::Tensor& x, const torch::Tensor& alpha, const torch::Tensor& sigma,
                         const torch::Tensor& labels = {}) const;
  // Posterior responsibilities w_k(x) [B, K] and eps = -sigma grad log p_t [B, D].
  torch::Tensor eps(const torch::Tensor& x, const torch::Tensor& alpha, const torch::Tensor& sigma,
                    const torch::Tensor& labels, torch::Tensor* responsibilities = nullptr) const;
  // Squared Mahalanobis distance of each x to each clean component [B, K].
  torch::Tensor mahalanobis2(const torch::Tensor& x) const;
  // The mixture projected by a [D, P] matrix: the exact marginal of x P.
  GaussianMixture project(const torch::Tensor& P) const;
  GaussianMixture to(const torch::Device& device) const;

 private:
  GaussianMixture() = default;
  // Per-component log N(x; alpha mu_k, alpha^2 Sigma_k + sigma^2 I) [B, K]; also z and var.
  torch::Tensor component_log_prob(const torch::Tensor& x, const torch::Tensor& alpha,
                                   const torch::Tensor& sigma, torch::Tensor* z, torch::Tensor* var) const;
  torch::Tensor masked_log_weights(const torch::Tensor& labels, int64_t batch) const;

  int64_t dim_ = 0;
  torch::Tensor means_;    // [K, D]
  torch::Tensor eigvecs_;  // [K, D, D] columns: eigenvectors of Sigma_k
  torch::Tensor eigvals_;  // [K, D]
  torch::Tensor weights_;  // [K] normalised
  torch::Tensor classes_;  // [K] int64
  std::vector<int64_t> class_list_;
};

// The mixture as a Denoiser (eps prediction), for a given noise schedule.
class MixtureTeacher : public Denoiser {

 public:
  MixtureTeacher(GaussianMixture mixture, Schedule schedule);
  torch::Tensor eps(const torch::Tensor& xt, const torch::Tensor& t, const Cond& cond) override;
  torch::Tensor log_prob(const torch::Tensor& xt, const torch::Tensor& t, const Cond& cond) const;
  const GaussianMixture& mixture() const { return mixture_; }
  const Schedule& schedule() const { return schedule_; }

 private:
  GaussianMixture mixture_;
  Schedule schedule_;
};

}  // namespace retort
