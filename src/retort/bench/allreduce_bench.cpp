#include "retort/bench/allreduce_bench.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>

#include "retort/core/error.h"
#include "retort/dist/gradient_reducer.h"
#include "retort/dist/world.h"

namespace retort {

std::string run_allreduce_bench(const AllReduceBenchOptions& opts) {
  if (!(opts.mb > 0) || opts.iters < 1 || opts.warmup < 0)
    throw ConfigError(fmt::format("bench-allreduce: --mb must be > 0 and --iters >= 1 (got {} and {})", opts.mb,
                                  opts.iters));
  apply_runtime(opts.runtime);
  const auto device = rank_device(opts.runtime);
  const World& w = join_world(opts.runtime, device);
  // The gradient as a model's parameter list: tensors of at most 1 MiB, which all_reduce_mean packs
  // into buckets of runtime.bucket_mb (the copies in and out are part of the measured time).
  const int64_t n = std::max<int64_t>(1, int64_t(opts.mb * 1024 * 1024 / 4)), piece = 256 * 1024;
  std::vector<torch::Tensor> grad;
  for (int64_t at = 0; at < n; at += piece)
    grad.push_back(torch::full({std::min(piece, n - at)}, double(w.rank + 1), torch::TensorOptions().device(device)));
  std::vector<double> ms;
  for (int64_t i = 0; i < opts.warmup + opts.iters; ++i) {
    barrier();  // every rank starts together, so the time is the collective's, not a straggler's
    const auto t0 = std::chrono::steady_clock::now();
    all_reduce_mean(grad);
    if (device.is_cuda()) torch::cuda::synchronize();
    const double t = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    if (i >= opts.warmup) ms.push_back(t);
  }
  // A check that the collective did what it says: the mean of 1..N, whatever the iterations.
  const double expect = (w.size + 1) / 2.0, got = grad.back()[-1].item<double>();
  if (std::abs(got - expect) > 1e-4 * expect)
    throw Error(fmt::format("bench-allreduce: the mean over {} ranks is {}, expected {}", w.size, got, expect));
  if (!w.writes()) return "";
  std::sort(ms.begin(), ms.end());
  const double median = ms[ms.size() / 2], bytes = double(n) * 4;
  const double algbw = bytes / (median / 1000) / 1e9;
  const int64_t bucket_bytes = int64_t(opts.runtime.bucket_mb * 1024 * 1024);
  nlohmann::json j{{"world_size", w.size},
                   {"backend", w.backend},
                   {"mib", bytes / (1024.0 * 1024.0)},
                   {"buckets", std::max<int64_t>(1, (int64_t(bytes) + bucket_bytes - 1) / bucket_bytes)},
                   {"ms_median", median},
                   {"ms_best", ms.front()},
                   {"algbw_GBps", algbw},
                   {"busbw_GBps", w.size > 1 ? algbw * 2 * (w.size - 1) / w.size : 0.0},
                   {"iters", opts.iters}};
  return j.dump();
}

}  // namespace retort
