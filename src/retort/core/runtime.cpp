#include "retort/core/runtime.h"

#include <dlfcn.h>
#include <fmt/format.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include <cstdlib>
#include <thread>

#include "retort/core/error.h"

namespace retort {
namespace {
using SetThreads = void (*)(int);
SetThreads openblas_setter() {
  return reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"));
}
}  // namespace

std::string blas_name() { return openblas_setter() ? "openblas" : "reference/unknown"; }

bool winograd_available() {
#ifdef RETORT_WITH_DNNL
  return true;
#else
  return false;
#endif
}

namespace {
std::string& conv_setting() {
  static std::string name = winograd_available() ? "winograd" : "direct";
  return name;
}
std::string& attention_setting() {
  static std::string name = "fused";
  return name;
}
}  // namespace

const std::string& cpu_conv_algorithm() { return conv_setting(); }
const std::string& cpu_attention_path() { return attention_setting(); }

torch::Device parse_device(const std::string& text, const std::string& key) {
  torch::Device device(torch::kCPU);
  try {
    device = torch::Device(text);
  } catch (const std::exception&) {
    throw ConfigError(fmt::format("{}: '{}' is not a device (use cpu, cuda or cuda:N)", key, text));
  }
  if (device.is_cuda() && !torch::cuda::is_available())
    throw ConfigError(fmt::format("{}: '{}' asked for, but this LibTorch sees no CUDA device", key, text));
  if (!device.is_cpu() && !device.is_cuda())
    throw ConfigError(fmt::format("{}: '{}' is not supported (use cpu or cuda)", key, text));
  return device;
}

std::string apply_runtime(const RuntimeOptions& opts) {
  int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  // Under torchrun, "all cores" is this host's share: the cores over its ranks (LOCAL_WORLD_SIZE).
  if (const char* local = std::getenv("LOCAL_WORLD_SIZE"); local && std::atoi(local) > 1)
    cores = std::max(1, cores / std::atoi(local));
  int torch_threads = opts.torch_threads > 0 ? opts.torch_threads : cores;
  torch::set_num_threads(torch_threads);
  static bool interop_set = false;  // LibTorch allows setting this once per process
  if (!interop_set) {
    try {
      torch::set_num_interop_threads(1);
    } catch (const c10::Error&) {
    }
    interop_set = true;
  }
#if defined(__GLIBC__)
  // glibc hands large freed blocks straight back to the kernel (mmap threshold, heap trimming), so
  // every big temporary of the next training step page-faults in afresh: a hash-grid render's
  // forward + backward measured 1.6 s this way and 0.24 s with freed memory kept in the process.
  if (opts.keep_freed_memory) {
    mallopt(M_MMAP_MAX, 0);
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
  }
#endif
  if (opts.conv == "winograd" && !winograd_available())
    throw ConfigError("runtime.conv = \"winograd\": this build of retort has no oneDNN (Debian: libdnnl-dev); give "
                      "\"direct\" or \"auto\"");
  conv_setting() = opts.conv == "auto" ? (winograd_available() ? "winograd" : "direct") : opts.conv;
  attention_setting() = opts.attention == "auto" ? "fused" : opts.attention;
  std::string blas = blas_name();
  if (auto setter = openblas_setter(); setter && opts.blas_threads > 0) setter(opts.blas_threads);
  return fmt::format("device={} torch_threads={} blas={} blas_threads={} conv={} attention={}", opts.device,
                     torch_threads, blas, opts.blas_threads, conv_setting(), attention_setting());
}

}  // namespace retort
