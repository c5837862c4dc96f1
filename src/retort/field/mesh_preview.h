// A picture of an extracted mesh for the run report: the triangles themselves, not the field's
// volume rendering, so a hole or a floater the OBJ will carry into Blender shows up here too.
#pragma once
#include <torch/torch.h>

#include "retort/field/marching_cubes.h"

namespace retort {

struct MeshPreviewOptions {
  int64_t size = 192;                                      // pixels per view (square)
  std::vector<double> yaw_deg{0, 45, 90, 180};             // one view per angle, around the up (y) axis
  double elevation_deg = 20;                               // every view looks down at this angle
};

// Orthographic views [N,3,size,size] in [0,1]: z-buffered triangles, vertex colours (grey when the
// mesh has none) times Lambert shading from a light over the viewer's shoulder, back faces darkened,
// white background. The mesh is centred and scaled to fill the frame the same way in every view.
torch::Tensor render_mesh_preview(const Mesh& mesh, const MeshPreviewOptions& opts = {});

}  // namespace retort
