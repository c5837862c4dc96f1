// The novel-view-synthesis pipeline's config-driven commands (render-scenes reads its own config:
// scene_dataset.h; `retort nvs` and `retort compare` take flags: nvs_command.h).
#pragma once
#include <cstdint>

#include "retort/core/config.h"
#include "retort/run/command.h"

namespace retort {

// `retort train-nvs-teacher`: `stop_after` > 0 ends this invocation after that many steps.
CommandReport train_nvs_teacher_command(ConfigNode root, const RunRequest& run, int64_t stop_after = 0);
// `retort distill-nvs`: a few-step student of the video teacher.
CommandReport distill_nvs_command(ConfigNode root, const RunRequest& run);
// `retort bench-nvs`: the novel-view tables (prints results.md).
CommandReport bench_nvs_command(ConfigNode root, const RunRequest& run);

}  // namespace retort
