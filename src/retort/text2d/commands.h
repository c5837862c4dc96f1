// The 2-D score-distillation commands: generate2d and bench-2d. Each reads its config (unknown keys
// rejected), builds the run identity and runs into run.out.
#pragma once
#include "retort/core/config.h"
#include "retort/run/command.h"

namespace retort {

CommandReport generate2d_command(ConfigNode root, const RunRequest& run);
CommandReport bench2d_command(ConfigNode root, const RunRequest& run);

}  // namespace retort
