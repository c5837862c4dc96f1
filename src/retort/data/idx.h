// Readers for MNIST-format IDX files (raw or gzip-compressed) and the image data sets built on them.
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>

#include <torch/torch.h>

namespace retort {

// An image data set held in memory.
struct ImageDataset {
  torch::Tensor images;     // float [N,C,H,W] in [-1,1]
  torch::Tensor labels;     // int64 [N], or undefined when unlabelled
  int64_t num_classes = 0;  // 0 when unlabelled
};

// Reads any IDX file: ubyte -> uint8, sbyte -> int8, short -> int16, int -> int32, float, double,
// shaped as the header says. Gzip is detected from the content, not the name. Throws IoError naming
// the file for a missing file, bad magic, unknown type, corrupt gzip data, or a payload that is
// shorter or longer than the dimensions say.
torch::Tensor read_idx(const std::filesystem::path& path);

// Images: 3-D ubyte [N,H,W] -> [N,1,H,W] in [-1,1]; labels: 1-D ubyte [N] -> int64.
// num_classes is the largest label + 1.
ImageDataset load_idx_pair(const std::filesystem::path& images, const std::filesystem::path& labels);

// split: "train" (60000) or "test" (10000). Files as installed by Debian's dataset-fashion-mnist.
ImageDataset load_fashion_mnist(const std::string& split,
                                const std::filesystem::path& dir = "/usr/share/datasets/fashion-mnist");

}  // namespace retort
