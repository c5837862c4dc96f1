#include "retort/image/export_command.h"

#include <fmt/format.h>

#include "retort/core/error.h"
#include "retort/models/torchscript_export.h"

namespace retort {

std::string run_export(const ExportRequest& req) {
  if (req.format != "torchscript")
    throw ConfigError(fmt::format("--format '{}': the only format is torchscript", req.format));
  if (req.out.has_parent_path() && !std::filesystem::is_directory(req.out.parent_path()))
    throw ConfigError(fmt::format("--out {}: the folder {} does not exist", req.out.string(),
                                  req.out.parent_path().string()));
  return fmt::format("wrote {}: {}", req.out.string(), export_torchscript(req.model, req.out));
}

}  // namespace retort
