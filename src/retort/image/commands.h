// The image pipeline's commands: train-teacher, train-evaluator, distill. Each reads its config
// (unknown keys rejected), builds the run identity and runs into run.out.
#pragma once
#include <cstdint>

#include "retort/core/config.h"
#include "retort/run/command.h"

namespace retort {

// `stop_after` > 0 ends this invocation after that many steps (rerun to continue).
CommandReport train_teacher_command(ConfigNode root, const RunRequest& run, int64_t stop_after = 0);
CommandReport train_evaluator_command(ConfigNode root, const RunRequest& run);
CommandReport distill_command(ConfigNode root, const RunRequest& run);

}  // namespace retort
