#include "retort/field/radiance_field.h"

#include <string>

#include "retort/core/error.h"

namespace retort {

RadianceField::RadianceField(double bound) : bound_(bound) {
  if (!(bound > 0)) throw ConfigError("radiance field bound must be > 0, got " + std::to_string(bound));
}

torch::Tensor blob_density_bias(const torch::Tensor& points, double blob_density, double blob_radius) {
  if (blob_density == 0) return torch::zeros({points.size(0)}, points.options());
  if (!(blob_radius > 0)) throw ConfigError("blob_radius must be > 0, got " + std::to_string(blob_radius));
  // The epsilon keeps d|p|/dp finite at the origin (normals from density gradients).
  return blob_density * (1 - (points.square().sum(1) + 1e-12).sqrt() / blob_radius);
}

}  // namespace retort
