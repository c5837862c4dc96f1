// Image folders (PNG / JPEG) as in-memory data sets.
#pragma once
#include <cstdint>
#include <filesystem>

#include <torch/torch.h>

#include "retort/data/idx.h"

namespace retort {

// Reads every .png/.jpg/.jpeg (any case) in `dir`, sorted by name, squashed (no crop) to
// resolution x resolution with `channels` 1 (grey) or 3 (RGB), as float [N,C,R,R] in [-1,1].
// When `dir` holds subfolders and no images, each subfolder (sorted, hidden ones skipped) is a
// class: labels are the subfolder's index. Otherwise the set is unlabelled and subfolders are
// ignored. Throws IoError naming the file for an undecodable image, or for an empty folder/class.
ImageDataset load_image_folder(const std::filesystem::path& dir, int64_t resolution, int64_t channels);

}  // namespace retort
