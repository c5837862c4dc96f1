// Emission-absorption volume rendering of a RadianceField (NeRF quadrature), differentiable
// w.r.t. the field's parameters, plus threestudio's opacity regularisers.
#pragma once
#include <torch/torch.h>

#include "retort/core/rng.h"
#include "retort/render/camera.h"
#include "retort/field/radiance_field.h"

namespace retort {

struct VolumeRenderOptions {
  int64_t samples = 64;     // per ray, evenly spaced between the ray's box entry and exit
  bool stratified = false;  // jitter each sample uniformly inside its interval (needs rng)
  Rng* rng = nullptr;       // source of the jitter; the program owns its randomness
  torch::Tensor background{};  // [3] or [R,3] rgb; undefined = white
};

struct RenderResult {
  torch::Tensor rgb;      // [R,3]
  torch::Tensor opacity;  // [R] = sum of weights
  torch::Tensor depth;    // [R] = sum w_i t_i (distance from the origin; 0 for a transparent ray)
  torch::Tensor weights;  // [R,S]
};

// origins [R,3], dirs [R,3] unit. Each ray is cut by the box [-bound, bound]^3 into S intervals
// of length delta = (far - near) / S with one sample each; a ray that misses the box gets
// delta = 0, so opacity 0 and the background. alpha_i = 1 - exp(-sigma_i delta),
// T_i = exp(-sum_{j<i} sigma_j delta), w_i = T_i alpha_i,
// rgb = sum w_i c_i + (1 - opacity) background. Throws ConfigError for bad shapes or options.
RenderResult render_rays(RadianceField& field, const torch::Tensor& origins, const torch::Tensor& dirs,
                         const VolumeRenderOptions& opts = {});

// Renders the rays of a res x res camera (camera_rays) as an image [3,res,res], `chunk` rays per field query. Memory is bounded by
// the chunk only without autograd (NoGradGuard); with autograd every chunk's graph is kept.
torch::Tensor render_image(RadianceField& field, const Rays& rays, int64_t res, const VolumeRenderOptions& opts = {},
                           int64_t chunk = 4096);

// threestudio's sparsity loss: mean sqrt(opacity^2 + 0.01), pushes empty rays to opacity 0.
torch::Tensor opacity_sparsity_loss(const torch::Tensor& opacity);
// threestudio's "opaque" loss: mean binary entropy of the opacity (clamped to [1e-3, 1 - 1e-3]),
// pushes every ray to 0 or 1 so the object does not stay a haze.
torch::Tensor opacity_entropy_loss(const torch::Tensor& opacity);

}  // namespace retort
