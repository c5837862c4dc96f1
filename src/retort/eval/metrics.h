// Sample-quality metrics for the Gaussian-mixture benchmark: mode coverage against the exact target,
// and two-sample distances (MMD, sliced W2, energy) against exact target samples. Inputs are float
// tensors [N, D] on any device; everything is computed on the CPU in float64. Shape errors and empty
// inputs throw retort::Error.
#pragma once
#include <cstdint>
#include <vector>

#include <torch/torch.h>

#include "retort/core/rng.h"
#include "retort/models/gaussian_mixture.h"

namespace retort {

struct ModeReport {
  std::vector<double> mass;  // per mode: mean posterior responsibility under the clean target
  int64_t covered = 0;       // modes with mass_k >= weight_k / 4
  int64_t total = 0;
  double mass_tv = 0;    // 0.5 sum_k |mass_k - weight_k|
  double in_3sigma = 0;  // fraction of samples within Mahalanobis distance 3 of at least one mode
};

// Non-finite samples belong to no mode (the masses then sum to less than 1, and mass_tv adds half the
// missing mass, as for an extra bucket of target weight 0) and are not within 3 sigma.
ModeReport mode_report(const GaussianMixture& target, const torch::Tensor& x);

// Biased (V-statistic) squared MMD with the sum of RBF kernels exp(-|a-b|^2 / (2 h^2)) over the
// bandwidths h; clamped at 0.
double mmd_rbf(const torch::Tensor& x, const torch::Tensor& y, const std::vector<double>& bandwidths);
// Median pairwise distance of (an evenly strided subsample of up to 1000 of) the reference times
// {0.1, 0.2, 0.5, 1, 2}: fixed, so every method is scored with the same kernel.
std::vector<double> mmd_bandwidths(const torch::Tensor& reference);

// Sliced Wasserstein-2: sqrt of the mean over random unit directions of the 1-D W2^2 between the
// projected samples; sizes may differ (the sorted projections are compared at equal quantile levels).
double sliced_w2(const torch::Tensor& x, const torch::Tensor& y, int64_t projections, Rng& rng);

// Energy distance 2 E|X-Y| - E|X-X'| - E|Y-Y'| (Euclidean, V-statistic), clamped at 0.
double energy_distance(const torch::Tensor& x, const torch::Tensor& y);

struct SampleMetrics {
  int64_t modes_covered = 0, modes_total = 0;
  double mass_tv = 0, mmd = 0, sw2 = 0, energy = 0, in_3sigma = 0;
  std::vector<double> mode_mass;
};

// All of the above for samples x against exact target samples `reference`. The distances cost
// O(N M) time; keep N, M at a few thousand. Distances are NaN when x has non-finite values.
SampleMetrics evaluate_samples(const GaussianMixture& target, const torch::Tensor& x,
                               const torch::Tensor& reference, Rng& rng);

}  // namespace retort
