// A dense voxel grid radiance field: raw density and colour logits at res^3 vertices spanning the
// box, trilinearly interpolated (grid_sample, so autograd gives the gradients).
#pragma once
#include <torch/torch.h>

#include "retort/field/radiance_field.h"

namespace retort {

struct VoxelGridOptions {
  int64_t resolution = 64;    // vertices per axis; vertex 0 at -bound, vertex res-1 at +bound
  double bound = 0.5;
  double blob_density = 10;   // 0: no blob
  double blob_radius = 0.25;  // threestudio's 0.5 in a box of half-width 1, scaled to ours
};

// density = softplus(raw + blob). Softplus rather than exp (Instant-NGP's trunc_exp): its slope is
// in (0,1), so a blob bias of 10 gives density ~10 instead of e^10 and the distillation gradient
// cannot blow up through the activation; threestudio's implicit-volume default is softplus too.
// rgb = sigmoid(colour logits).
class VoxelGridImpl : public RadianceField {
 public:
  explicit VoxelGridImpl(const VoxelGridOptions& opts);
  FieldSample query(const torch::Tensor& points) override;
  // Trilinear interpolation of grid [1,C,Z,Y,X] at points [N,3] -> [N,C]; clamps outside the box.
  torch::Tensor interpolate(const torch::Tensor& grid, const torch::Tensor& points) const;
  // World position of vertex index i along any axis.
  double vertex_coord(int64_t i) const;
  const VoxelGridOptions& options() const { return opts_; }

  torch::Tensor density;  // [1,1,Z,Y,X] raw, zero-initialised (the blob supplies the start shape)
  torch::Tensor color;    // [1,3,Z,Y,X] logits, zero-initialised (grey)

 private:
  VoxelGridOptions opts_;
};
TORCH_MODULE(VoxelGrid);

}  // namespace retort
