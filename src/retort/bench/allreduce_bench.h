// `retort bench-allreduce`: the time and bandwidth of the gradient all-reduce that data-parallel
// training does after every backward (dist/gradient_reducer.h's bucketed all_reduce_mean), run under torchrun.
#pragma once
#include <string>

#include "retort/core/runtime.h"

namespace retort {

struct AllReduceBenchOptions {
  double mb = 25;  // MiB of float32 gradient per all-reduce
  int64_t iters = 20, warmup = 3;
  RuntimeOptions runtime;
};

// Returns one JSON line (rank 0's timing; empty on the other ranks): world size, backend, MiB,
// buckets, median and best ms per all-reduce, algorithm and bus bandwidth (nccl-tests' definitions:
// algbw = bytes / time, busbw = algbw x 2 (N - 1) / N).
std::string run_allreduce_bench(const AllReduceBenchOptions& opts);

}  // namespace retort
