// A radiance field for text-to-3D score distillation (threestudio-style): density and colour at
// points of the box [-bound, bound]^3, world +z up. Volume rendering, mesh export and turntables
// work on this interface only.
#pragma once
#include <torch/torch.h>

namespace retort {

struct FieldSample {
  torch::Tensor density;  // [N] >= 0 (extinction per unit length)
  torch::Tensor rgb;      // [N,3] in [0,1]
};

class RadianceField : public torch::nn::Module {
 public:
  explicit RadianceField(double bound = 0.5);
  // points [N,3] inside the box (callers clamp); differentiable w.r.t. the field's parameters.
  virtual FieldSample query(const torch::Tensor& points) = 0;
  double bound() const { return bound_; }

 private:
  double bound_;
};

// Magic3D's density bias (threestudio "blob_magic3d"): blob_density * (1 - |p| / blob_radius),
// added before the density activation so distillation starts from a visible soft ball rather
// than empty space, where the diffusion model's gradient would have nothing to shape. [N].
torch::Tensor blob_density_bias(const torch::Tensor& points, double blob_density, double blob_radius);

}  // namespace retort
