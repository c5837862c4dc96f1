// The [runtime] table shared by every command: device and thread policy (runtime.h).
#pragma once
#include <filesystem>

#include "retort/core/config.h"
#include "retort/core/options.h"
#include "retort/core/runtime.h"

namespace retort {

// The [runtime] keys: device, threads, blas_threads, keep_freed_memory (runtime.h).
const OptionTable<RuntimeOptions>& runtime_option_table();
RuntimeOptions read_runtime_options(ConfigNode n);

// Creates `dir` and its parents; IoError naming it when that fails.
void create_output_folder(const std::filesystem::path& dir);
// The start of every command that writes a run folder: creates `out`, applies the thread policy
// and returns the device.
torch::Device start_run(const std::filesystem::path& out, const RuntimeOptions& runtime);

}  // namespace retort
