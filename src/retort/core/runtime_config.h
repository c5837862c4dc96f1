// The [runtime] table shared by every command: device and thread policy (runtime.h).
#pragma once
#include "retort/core/config.h"
#include "retort/core/options.h"
#include "retort/core/runtime.h"

namespace retort {

// The [runtime] keys: device, threads, blas_threads, keep_freed_memory (runtime.h).
const OptionTable<RuntimeOptions>& runtime_option_table();
RuntimeOptions read_runtime_options(ConfigNode n);


}  // namespace retort
