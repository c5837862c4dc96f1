#include "retort/core/runtime_config.h"

#include <fmt/format.h>

#include "retort/core/error.h"

namespace retort {

RuntimeOptions read_runtime_options(ConfigNode n) {
  RuntimeOptions r;
  r.device = n.string("device", r.device);
  parse_device(r.device, n.where("device"));
  r.torch_threads = static_cast<int>(n.integer("threads", r.torch_threads, 0, 1024));
  r.blas_threads = static_cast<int>(n.integer("blas_threads", r.blas_threads, 0, 1024));
  r.keep_freed_memory = n.boolean("keep_freed_memory", r.keep_freed_memory);
  return r;
}

void create_output_folder(const std::filesystem::path& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw IoError(fmt::format("{}: cannot create output folder: {}", dir.string(), ec.message()));
}

torch::Device start_run(const std::filesystem::path& out, const RuntimeOptions& runtime) {
  create_output_folder(out);
  apply_runtime(runtime);
  return parse_device(runtime.device);
}

}  // namespace retort
