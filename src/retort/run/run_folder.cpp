#include "retort/run/run_folder.h"

#include <fmt/format.h>

#include <fstream>

#include "retort/core/error.h"
#include "retort/dist/world.h"
#include "retort/io/fingerprint.h"

namespace retort {

void create_output_folder(const std::filesystem::path& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw IoError(fmt::format("{}: cannot create output folder: {}", dir.string(), ec.message()));
  auto probe = dir / ".write-probe";
  {
    std::ofstream f(probe);
    if (!(f << "ok")) throw IoError(fmt::format("{}: output folder is not writable", dir.string()));
  }
  std::filesystem::remove(probe, ec);
}

torch::Device start_run(const std::filesystem::path& out, const RuntimeOptions& runtime, bool data_parallel) {
  if (const int ranks = launched_world_size(); !data_parallel && ranks > 1)
    throw ConfigError(fmt::format("WORLD_SIZE = {}: this command runs on one process; launch it without torchrun "
                                  "(train-teacher, train-nvs-teacher, train-evaluator, distill, distill-nvs and bench-gmm run "
                                  "data-parallel)",
                                  ranks));
  create_output_folder(out);
  apply_runtime(runtime);
  if (!data_parallel) return parse_device(runtime.device);
  auto device = rank_device(runtime);
  join_world(runtime, device);
  return device;
}

void write_text_atomic(const std::filesystem::path& path, const std::string& text) {
  auto tmp = path;
  tmp += ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << text;
    if (!out) throw IoError(fmt::format("{}: cannot write", tmp.string()));
  }
  std::filesystem::rename(tmp, path);
}

void write_resolved_config(const std::filesystem::path& out, const std::string& config_text) {
  const World& w = world();
  if (!w.writes()) return;
  std::string text = config_text;
  if (w.distributed()) {
    if (!text.empty() && text.back() != '\n') text += '\n';
    text += fmt::format("# run at world size {} ({}, launched by torchrun): the batch keys are global batches, each "
                        "rank trains on batch / {}\n", w.size, w.backend, w.size);
  }
  write_text_atomic(out / "config.resolved.toml", text);
}

std::string run_identity(const std::string& resolved_toml, const std::filesystem::path& teacher) {
  return resolved_toml + "# teacher " + file_fingerprint(teacher) + "\n";
}

}  // namespace retort
