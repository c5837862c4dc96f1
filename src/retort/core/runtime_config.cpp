#include "retort/core/runtime_config.h"

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

}  // namespace retort
