// Classic marching cubes (Lorensen & Cline 1987) with vertices welded along shared cube edges, and
// mesh extraction from a RadianceField's density.
//
// Dependency decision: Debian 12 has no small marching-cubes library. OpenVDB's volumeToMesh and
// VTK (vtkMarchingCubes) drag in TBB/Boost/Blosc or all of VTK (thousands of packages in the
// closure); CGAL 5.5 has no marching cubes (Isosurfacing_3 arrived in CGAL 6.0) and its surface
// mesher is Delaunay refinement; libigl and PyMCubes are not packaged; python3-isosurfaces and
// r-cran-misc3d are Python/R. So it is implemented here.
#pragma once
#include <array>

#include <torch/torch.h>

#include "retort/field/radiance_field.h"

namespace retort {

struct Mesh {
  torch::Tensor vertices;  // [V,3] float32
  torch::Tensor faces;     // [F,3] int64, counter-clockwise seen from outside
  torch::Tensor colors;    // [V,3] float32 in [0,1]; may be undefined
};

// The surface {volume == threshold} of volume [X,Y,Z] (vertex (i,j,k) at origin + spacing*(i,j,k)),
// inside where volume > threshold; normals point from inside to outside. Each grid edge gives at
// most one vertex, so the mesh is closed wherever the surface does not leave the volume. Throws
// Error "no surface at threshold X: max density Y" when nothing crosses the threshold.
Mesh marching_cubes(const torch::Tensor& volume, double threshold, const std::array<double, 3>& origin,
                    double spacing);

struct MeshExtractOptions {
  int64_t resolution = 128;  // density samples per axis over [-bound, bound]
  double threshold = 25;     // threestudio's isosurface_threshold default
  int64_t chunk = 65536;     // points per field query
};

// The field's density isosurface on a resolution^3 grid over its box, padded by one layer of
// below-threshold values so an object touching the box still gives a closed mesh; vertex colours
// are the field's rgb at the vertices.
Mesh extract_mesh(RadianceField& field, const MeshExtractOptions& opts = {});

}  // namespace retort
