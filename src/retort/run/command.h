// What the CLI hands a command and gets back: each command is one library call with its parsed
// config, a RunRequest, and returns what to print.
#pragma once
#include <filesystem>
#include <string>

namespace retort {

struct RunRequest {
  std::filesystem::path out;  // the run folder (rerun to resume)
  bool progress = true;       // progress bars on stderr
};

struct CommandReport {
  std::string result;  // stdout: the table or summary
  std::string note;    // stderr: what was written, or how to continue
};

}  // namespace retort
