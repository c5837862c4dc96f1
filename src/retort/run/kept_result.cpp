#include "retort/run/kept_result.h"

#include <fstream>

#include "retort/run/run_folder.h"

namespace retort {

nlohmann::json kept_result(const std::filesystem::path& path, const std::string& config_text) {
  if (!std::filesystem::exists(path)) return nullptr;
  try {
    std::ifstream in(path);
    auto saved = nlohmann::json::parse(in);
    if (saved.is_object() && saved.value("config", "") == config_text) {
      saved.erase("config");
      return saved;
    }
  } catch (const nlohmann::json::exception&) {
  }
  return nullptr;
}

void keep_result(const std::filesystem::path& path, nlohmann::json result, const std::string& config_text) {
  result["config"] = config_text;
  write_text_atomic(path, result.dump(2));
}

}  // namespace retort
