// Mesh files for looking at extracted fields in any viewer (MeshLab, Blender).
#pragma once
#include <filesystem>

#include "retort/field/marching_cubes.h"

namespace retort {

// Wavefront OBJ: "v x y z r g b" (colours in [0,1], the common vertex-colour extension) or
// "v x y z" without colours, then 1-based "f a b c". Throws IoError when it cannot be written.
void write_obj(const std::filesystem::path& path, const Mesh& mesh);

// PLY, binary little-endian: float x y z, uchar red green blue (when coloured); faces as
// uchar count + int vertex_indices. Throws IoError when it cannot be written or indices exceed int.
void write_ply(const std::filesystem::path& path, const Mesh& mesh);

}  // namespace retort
