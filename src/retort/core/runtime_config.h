// The [runtime] table shared by every command: device and thread policy (runtime.h).
#pragma once
#include "retort/core/config.h"
#include "retort/core/runtime.h"

namespace retort {

// Keys: device ("cpu", "cuda", "cuda:N"), threads (LibTorch intra-op; 0 = all cores), blas_threads,
// keep_freed_memory (glibc malloc tuning, runtime.h).
RuntimeOptions read_runtime_options(ConfigNode n);

}  // namespace retort
