// Weights in the safetensors format (https://github.com/huggingface/safetensors): an 8-byte
// little-endian header length, a JSON header naming each tensor's dtype, shape and byte range,
// then the raw little-endian data. Readable by the Python `safetensors` package and vice versa.
#pragma once
#include <filesystem>
#include <map>
#include <string>

#include <torch/torch.h>

namespace retort {

// dtypes F32, F64, F16, BF16, I64, I32, I16, I8, U8, BOOL. Tensors may live on any device and be
// non-contiguous; they are written contiguous from CPU copies. Written to path + ".tmp" then
// renamed. Throws IoError for an unsupported dtype, an undefined tensor or a write failure.
void save_safetensors(const std::filesystem::path& path, const std::map<std::string, torch::Tensor>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

// Loads every tensor onto the CPU. Validates the header length, the JSON, each entry's dtype,
// shape and byte range (inside the data, matching shape x dtype size, not overlapping another).
// Throws IoError naming the file and, where it applies, the tensor.
std::map<std::string, torch::Tensor> load_safetensors(const std::filesystem::path& path,
                                                      std::map<std::string, std::string>* metadata = nullptr);

// The name of the first floating-point tensor holding a NaN or an infinity; "" when there is none.
std::string first_non_finite(const std::map<std::string, torch::Tensor>& tensors);

// All defined parameters and buffers, under the names LibTorch gives them ("trunk.in_proj.weight").
// NonFiniteError (and no file) when one holds a NaN or an infinity: weights are never written so.
void save_module(const std::filesystem::path& path, torch::nn::Module& m,
                 const std::map<std::string, std::string>& metadata = {});

// Strict: the file must hold exactly the module's parameters and buffers, each with the module's
// shape; values are converted to the module's dtype and device. On any mismatch nothing is copied
// and the IoError lists missing names, unexpected names and shape mismatches, or names the first
// tensor holding a NaN or an infinity.
void load_module(const std::filesystem::path& path, torch::nn::Module& m);

}  // namespace retort
