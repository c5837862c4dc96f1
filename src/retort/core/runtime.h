// Process-wide settings: compute device and the thread policy.
//
// LibTorch parallelises its own kernels with OpenMP, and Debian's OpenBLAS (pthread build) starts
// its own pool as well. On two cores the two pools compete; a small MLP training step measured
// 9.5 ms with both at their defaults and 2.4 ms with OpenBLAS at one thread. The default policy is
// therefore: LibTorch intra-op threads = all cores, inter-op = 1, BLAS threads = 1.
#pragma once
#include <string>

#include <torch/torch.h>

namespace retort {

struct RuntimeOptions {
  std::string device = "cpu";  // "cpu", "cuda", "cuda:N"
  int torch_threads = 1;       // 0 = number of cores; 1 measured fastest for small models here
  int blas_threads = 1;        // threads of the BLAS library, when it exposes a setter
  bool keep_freed_memory = true;  // glibc: keep freed memory for reuse instead of returning it to the OS
  std::string conv = "auto";      // CPU 3x3 convolutions: "winograd" | "direct" | "auto" (models/winograd_conv.h)
  std::string attention = "auto";  // CPU temporal attention: "fused" | "bmm" | "auto" (models/small_attention.h)
  // Data parallelism under torchrun (dist/world.h).
  std::string backend = "auto";  // "auto" (NCCL on CUDA, else Gloo), "gloo", "nccl"
  double dist_timeout = 300;     // seconds a collective waits for the other ranks
  double bucket_mb = 25;         // gradient all-reduce bucket size (PyTorch DDP's default)
  bool overlap = true;           // start a bucket's all-reduce during the backward pass (DDP's overlap)
};

// Applies the thread policy once per process. Returns a one-line description for logs.
std::string apply_runtime(const RuntimeOptions& opts);
// Parses and validates a device string; throws ConfigError naming `key`.
torch::Device parse_device(const std::string& text, const std::string& key = "runtime.device");
// Name of the BLAS library LibTorch is calling ("openblas" or "reference/unknown").
std::string blas_name();
// The CPU 3x3 convolution algorithm in force: "winograd" (oneDNN's Winograd kernels,
// models/winograd_conv.h) or "direct" (LibTorch's own path). apply_runtime sets it from
// RuntimeOptions::conv; before that, and for "auto", it is "winograd" in builds with oneDNN.
const std::string& cpu_conv_algorithm();
// The CPU temporal attention in force: "fused" (retort's kernel, models/small_attention.h) or
// "bmm" (LibTorch's bmm + softmax). apply_runtime sets it from RuntimeOptions::attention; "auto"
// and the default before that are "fused".
const std::string& cpu_attention_path();
// Whether this build has oneDNN (find_package(dnnl) at configure time).
bool winograd_available();

}  // namespace retort
