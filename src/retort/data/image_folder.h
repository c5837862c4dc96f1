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

// One PNG / JPEG file as float [channels,H,W] in [0,1] at its own size (channels 1 or 3). Throws
// IoError naming the file when it is missing or cannot be decoded.
torch::Tensor read_image(const std::filesystem::path& path, int64_t channels = 3);

}  // namespace retort
