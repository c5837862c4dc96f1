// The text-to-3D commands: generate3d and eval3d. Each reads its config (unknown keys rejected),
// builds the run identity and runs into run.out.
#pragma once
#include <string>

#include "retort/core/config.h"
#include "retort/run/command.h"

namespace retort {

CommandReport generate3d_command(ConfigNode root, const RunRequest& run);
CommandReport eval3d_command(ConfigNode root, const RunRequest& run);
// eval3d's --prompts "a red torus; a blue cube": the --set override of `prompts` it stands for.
std::string prompts_override(const std::string& semicolon_list);

}  // namespace retort
