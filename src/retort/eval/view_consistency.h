// Multi-view consistency of a 3D result, measured the way a viewer notices it: warp each view
// into its neighbour with the rendered depth and compare colours where the surface is visible in
// both. A crisp, opaque object with view-independent colour scores near the resampling floor
// (the same measure on the true object gives that floor); a haze whose colour changes with the view
// (the failure mode of score distillation) scores high.
#pragma once
#include <vector>

#include <torch/torch.h>

#include "retort/render/camera.h"

namespace retort {

struct ViewSet {
  std::vector<Camera> cameras;
  torch::Tensor images;  // [K,3,R,R] in [0,1]
  torch::Tensor depth;   // [K,R,R] distance along each pixel's ray
  torch::Tensor mask;    // [K,R,R] bool: the pixel sees the surface
};

struct Consistency {
  double l1 = 0;        // mean |rgb_a - rgb_b| over matched pixels and channels, in [0,1]
  double matched = 0;   // fraction of masked pixels of view a found visible in view b
};

// Pairs view k with view k+1 (cyclically). depth_tolerance: a warped pixel counts as visible in b
// when b's own depth there agrees to within this distance.
Consistency view_consistency(const ViewSet& views, double depth_tolerance = 0.03);

}  // namespace retort
