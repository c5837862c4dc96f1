// Benchmarks and eval3d keep the runs they finished, so a killed one resumes without redoing them,
// but only runs made with the same config: a changed config or teacher redoes the run.
#pragma once
#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

namespace retort {

// The JSON at `path`, without its "config", when it exists, parses and its "config" equals
// `config_text`; null otherwise.
nlohmann::json kept_result(const std::filesystem::path& path, const std::string& config_text);
// Writes `result` with "config" = `config_text` (atomically).
void keep_result(const std::filesystem::path& path, nlohmann::json result, const std::string& config_text);

}  // namespace retort
