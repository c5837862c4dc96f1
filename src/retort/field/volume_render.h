// Emission-absorption volume rendering of a RadianceField (NeRF quadrature), differentiable
// w.r.t. the field's parameters, plus threestudio's opacity regularisers.
#pragma once
#include <torch/torch.h>

#include "retort/core/rng.h"
#include "retort/render/camera.h"
#include "retort/field/radiance_field.h"

namespace retort {

// DreamFusion's shading, deferred to one surface point per ray (the ray's expected termination,
// depth / opacity): the field's colour is an albedo, lit by a Lambertian light as the world's
// renderer lights its objects. The normal is minus the density gradient there, by central
// differences (6 density queries per ray), so the image depends on the geometry's orientation and
// the teacher's gradient reaches the surface's shape, not only its colour.
struct Shading {
  bool on = false;
  torch::Tensor light{};     // [3] unit direction towards the light (required when on)
  double ambient = 0.3;      // shade = ambient + (1 - ambient) max(0, n.l) (the world's)
  bool textureless = false;  // albedo = 1: the shape alone (DreamFusion's textureless renders)
  double normal_eps = 0.01;  // finite-difference step (box units)
};

struct VolumeRenderOptions {
  int64_t samples = 64;     // per ray, evenly spaced between the ray's box entry and exit
  bool stratified = false;  // jitter each sample uniformly inside its interval (needs rng)
  Rng* rng = nullptr;       // source of the jitter; the program owns its randomness
  torch::Tensor background{};  // [3] or [R,3] rgb; undefined = white
  Shading shading{};
};

struct RenderResult {
  torch::Tensor rgb;      // [R,3]
  torch::Tensor opacity;  // [R] = sum of weights
  torch::Tensor depth;    // [R] = sum w_i t_i (distance from the origin; 0 for a transparent ray)
  torch::Tensor weights;  // [R,S]
  torch::Tensor normal;   // [R,3] unit, at the expected termination (shaded renders only)
};

// origins [R,3], dirs [R,3] unit. Each ray is cut by the box [-bound, bound]^3 into S intervals
// of length delta = (far - near) / S with one sample each; a ray that misses the box gets
// delta = 0, so opacity 0 and the background. alpha_i = 1 - exp(-sigma_i delta),
// T_i = exp(-sum_{j<i} sigma_j delta), w_i = T_i alpha_i,
// rgb = sum w_i c_i + (1 - opacity) background; shaded (opts.shading.on):
// rgb = shade * sum w_i c_i + (1 - opacity) background. Throws ConfigError for bad shapes or options.
RenderResult render_rays(RadianceField& field, const torch::Tensor& origins, const torch::Tensor& dirs,
                         const VolumeRenderOptions& opts = {});

// Renders the rays of a res x res camera (camera_rays) as an image [3,res,res], `chunk` rays per field query. Memory is bounded by
// the chunk only without autograd (NoGradGuard); with autograd every chunk's graph is kept.
torch::Tensor render_image(RadianceField& field, const Rays& rays, int64_t res, const VolumeRenderOptions& opts = {},
                           int64_t chunk = 4096);

// threestudio's sparsity loss: mean sqrt(opacity^2 + 0.01), pushes empty rays to opacity 0.
// Unit normals -grad(density) / |grad(density)| at points [N,3] by central differences of step
// eps. A point where the density is flat gets a zero vector. Differentiable w.r.t. the field's
// parameters and the points.
torch::Tensor density_normals(RadianceField& field, const torch::Tensor& points, double eps);

torch::Tensor opacity_sparsity_loss(const torch::Tensor& opacity);
// threestudio's "opaque" loss: mean binary entropy of the opacity (clamped to [1e-3, 1 - 1e-3]),
// pushes every ray to 0 or 1 so the object does not stay a haze.
torch::Tensor opacity_entropy_loss(const torch::Tensor& opacity);

}  // namespace retort
