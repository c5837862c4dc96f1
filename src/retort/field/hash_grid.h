// Instant-NGP's multi-resolution hash encoding (Mueller et al. 2022) followed by a small MLP, the
// geometry threestudio uses for score distillation. On the CPU the encoding is one fused kernel with
// its own backward; on other devices, vectorised torch ops.
#pragma once
#include <vector>

#include <torch/torch.h>

#include "retort/field/radiance_field.h"

namespace retort {

// threestudio's defaults are 16 levels, 2^19 entries, 2 features, N_min 16, N_max 2048; these
// are scaled down so a 64x64 render with 64 samples per ray stays interactive on a CPU.
struct HashGridOptions {
  int64_t levels = 12;         // L
  int64_t log2_table = 15;     // T: 2^T entries per level
  int64_t features = 2;        // F per level
  int64_t base_resolution = 16;  // N_min (cells per axis at level 0)
  int64_t max_resolution = 256;  // N_max at level L-1; the growth is b = (N_max/N_min)^(1/(L-1))
  int64_t hidden = 64;
  int64_t hidden_layers = 1;
  double bound = 0.5;
  double blob_density = 10;
  double blob_radius = 0.25;
  double init_scale = 1e-4;  // tables start uniform in [-s, s] (Instant-NGP)
};

struct HashLevel {
  int64_t resolution;  // cells per axis; vertices are resolution + 1
  bool dense;          // (resolution+1)^3 <= 2^T: one entry per vertex, no hashing
  int64_t offset;      // first row of this level in the table
};

// out[f,b,m] = sum over corners c of weights[b,c,m] * table[rows[b,c,m], f]: rows, weights
// [B,8,M] -> [F,B,M], with a written-out backward (table and weights) that is much faster on the
// CPU than autograd's.
torch::Tensor hash_gather(const torch::Tensor& table, const torch::Tensor& rows, const torch::Tensor& weights);

// The CPU path of encodings constructed from now on: false (the default) the kernel, true the tensor
// ops. bench-step --hash-path sets it to time a whole pipeline on the reference path.
void set_hash_grid_vectorised_default(bool vectorised);
bool hash_grid_vectorised_default();

class HashGridEncodingImpl : public torch::nn::Module {
 public:
  explicit HashGridEncodingImpl(const HashGridOptions& opts);
  // points [N,3] in [-bound, bound]^3 (clamped) -> features [N, L*F], level-major; differentiable
  // w.r.t. the table and the points. On the CPU one fused kernel (corners computed per point, a
  // written-out backward); elsewhere forward_vectorised.
  torch::Tensor forward(const torch::Tensor& points);
  // The same encoding as tensor operations (corner rows and trilinear weights as [L,8,N] tensors,
  // then hash_gather): the path for CUDA tensors, and the CPU kernel's reference in the tests.
  torch::Tensor forward_vectorised(const torch::Tensor& points);
  // Table rows of integer vertices ijk [...,3] (each in [0, resolution]) at one level.
  torch::Tensor vertex_rows(const torch::Tensor& ijk, int64_t level) const;
  const std::vector<HashLevel>& levels() const { return levels_; }
  int64_t output_dim() const { return opts_.levels * opts_.features; }

  torch::Tensor table;  // [sum over levels of min((res+1)^3, 2^T), F]
  bool vectorised = hash_grid_vectorised_default();  // forward takes forward_vectorised on the CPU too

 private:
  HashGridOptions opts_;
  std::vector<HashLevel> levels_;
};
TORCH_MODULE(HashGridEncoding);

// density = softplus(mlp_0 + blob), rgb = sigmoid(mlp_1..3); see VoxelGridImpl for why softplus.
class HashGridFieldImpl : public RadianceField {
 public:
  explicit HashGridFieldImpl(const HashGridOptions& opts = {});
  FieldSample query(const torch::Tensor& points) override;
  const HashGridOptions& options() const { return opts_; }
  // Coarse-to-fine: only the first n levels feed the MLP (the others read as zero and get no
  // gradient); n = levels (the default) uses them all. Not saved: the trainer sets it each step.
  void set_active_levels(int64_t n);
  int64_t active_levels() const { return active_levels_; }

  HashGridEncoding encoding{nullptr};
  torch::nn::Sequential mlp{nullptr};

 private:
  HashGridOptions opts_;
  int64_t active_levels_;
};
TORCH_MODULE(HashGridField);

}  // namespace retort
