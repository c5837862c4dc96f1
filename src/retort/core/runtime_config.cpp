#include "retort/core/runtime_config.h"

#include <fmt/format.h>

#include "retort/core/error.h"

namespace retort {

const OptionTable<RuntimeOptions>& runtime_option_table() {
  static const auto table = [] {
    using R = RuntimeOptions;
    OptionTable<R> t;
    t.text("device", &R::device, "cpu, cuda or cuda:N: where tensors live")
        .integer("threads", &R::torch_threads, 0, 1024, "LibTorch intra-op threads; 0 = all cores (under torchrun: the cores / ranks on this host)")
        .integer("blas_threads", &R::blas_threads, 0, 1024, "OpenBLAS threads (README, Speed)")
        .flag("keep_freed_memory", &R::keep_freed_memory,
              "glibc malloc keeps freed memory for reuse instead of returning it to the OS")
        .choice("conv", &R::conv, {"auto", "winograd", "direct"},
                "CPU 3x3 convolutions: winograd (oneDNN's Winograd kernels), direct (LibTorch's own path, what "
                "PyTorch runs), auto = winograd in builds with oneDNN (README, Speed)")
        .choice("attention", &R::attention, {"auto", "fused", "bmm"},
                "CPU temporal attention of video UNets: fused (retort's kernel over the short frame sequences), "
                "bmm (LibTorch's bmm + softmax, what PyTorch runs), auto = fused (README, Speed)")
        .choice("backend", &R::backend, {"auto", "gloo", "nccl"},
                "process-group backend under torchrun: auto = NCCL when device is CUDA, else Gloo")
        .number("dist_timeout", &R::dist_timeout, 1, 86400,
                "seconds a collective waits for the other ranks before the run stops with an error")
        .number("bucket_mb", &R::bucket_mb, 0.001, 4096,
                "MiB of gradients per all-reduce call (the first bucket, the last layers', at most 1 MiB)")
        .flag("overlap", &R::overlap,
              "start each bucket's all-reduce during the backward pass as soon as its gradients are final "
              "(PyTorch DDP's overlap); false: all after the backward pass")
        .check([](ConfigNode& n, const R& r) { parse_device(r.device, n.where("device")); });
    return t;
  }();
  return table;
}

RuntimeOptions read_runtime_options(ConfigNode n) {
  RuntimeOptions r;
  runtime_option_table().read(n, r);
  return r;
}

}  // namespace retort
