// PNG grids for looking at samples.
#pragma once
#include <cstdint>
#include <filesystem>

#include <torch/torch.h>

namespace retort {

// Writes images [N,C,H,W] (C 1, 3 or 4; values in [-1,1], clamped) as one PNG, `columns` per row,
// separated and framed by `pad` black pixels. Throws IoError when the file cannot be written.
void write_png_grid(const std::filesystem::path& path, const torch::Tensor& images, int64_t columns,
                    int64_t pad = 2);

}  // namespace retort
