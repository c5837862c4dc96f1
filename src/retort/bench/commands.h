// The benchmark commands: bench-gmm and bench-distill. Each reads its config (unknown keys
// rejected), runs into run.out and returns the results table.
#pragma once
#include "retort/core/config.h"
#include "retort/run/command.h"

namespace retort {

CommandReport bench_gmm_command(ConfigNode root, const RunRequest& run);
CommandReport bench_distill_command(ConfigNode root, const RunRequest& run);

}  // namespace retort
