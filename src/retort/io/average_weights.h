// The element-wise mean of weight files of one architecture (stochastic weight averaging, model
// soups): for instance a student averaged over the last checkpoints of a run whose quality
// oscillates from one checkpoint to the next.
#pragma once
#include <filesystem>
#include <vector>

namespace retort {

// Floating tensors are averaged (in double, written back in their dtype); any other tensor must be
// equal in every file. Every file must hold the same names, shapes, dtypes and metadata (a
// student's timesteps, a UNet's architecture); the metadata is written unchanged. Throws IoError
// naming the file and tensor that do not match; nothing is written then.
void average_weights(const std::vector<std::filesystem::path>& inputs, const std::filesystem::path& out);

}  // namespace retort
