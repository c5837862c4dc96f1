// Data parallelism on PyTorch's own distributed engine: a c10d process group (Gloo on CPU, NCCL on
// CUDA) whose ranks torchrun starts and describes in the environment (RANK, WORLD_SIZE, LOCAL_RANK,
// MASTER_ADDR, MASTER_PORT, TORCHELASTIC_RESTART_COUNT). Without that environment the process is a
// world of one and every call here is a no-op, so single-process runs are exactly as before.
//
// The training loops use it in three places: initial weights are broadcast from rank 0, every rank
// computes the loss on its slice of the global batch (`rank_slice`), and gradients are averaged over
// the ranks in buckets (dist/gradient_reducer.h) before clipping. Rank 0 alone writes (`writes()`).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <torch/torch.h>

#include "retort/core/runtime.h"

namespace retort {

struct World {
  int rank = 0, size = 1, local_rank = 0;
  int restart = 0;  // TORCHELASTIC_RESTART_COUNT: how often torchrun restarted the group
  std::string backend = "none";
  bool distributed() const { return size > 1; }
  bool writes() const { return rank == 0; }  // the one rank that writes files
};

// This process's world (a world of one until `join_world` joined a group).
const World& world();
// The world size torchrun launched this process into (WORLD_SIZE; 1 without torchrun), before
// any group is joined. ConfigError when the variable is not an integer.
int launched_world_size();

// The device rank r uses: runtime.device, with "cuda" meaning cuda:LOCAL_RANK.
torch::Device rank_device(const RuntimeOptions& runtime);

// Joins the process group torchrun's environment describes, once per process (later calls return
// the same world); a world of one without WORLD_SIZE > 1. `device` chooses "auto"'s backend.
// ConfigError for a bad backend or environment, Error when the group cannot be formed.
const World& join_world(const RuntimeOptions& runtime, const torch::Device& device);

// An all-reduce (sum) started and not yet waited for: `wait_for` waits (Error after
// runtime.dist_timeout) and returns the summed buffer. Gradient averaging (dist/gradient_reducer.h)
// starts them during the backward pass.
struct StartedCollective;
std::shared_ptr<StartedCollective> start_sum_over_ranks(const torch::Tensor& buffer);
torch::Tensor wait_for(StartedCollective& started);
// runtime.bucket_mb in bytes, and runtime.overlap, of the joined group.
int64_t gradient_bucket_bytes();
bool overlap_with_backward();
// Rank 0's values of `tensors`, in place on every rank.
void broadcast_from_rank0(const std::vector<torch::Tensor>& tensors);
// The mean of a scalar over the ranks (a logged loss).
double mean_over_ranks(double value);
// Waits until every rank arrives.
void barrier();
// The sum of `x` over the ranks, differentiable: the gradient it passes back on each rank is the sum
// of every rank's gradient, as a quantity every rank's loss reads (a batch-norm statistic of the
// global batch) needs. `x` itself on a world of one.
torch::Tensor sum_over_ranks(const torch::Tensor& x);
// Seconds this process has spent in collectives since it started, waiting for slower ranks included.
double collective_seconds();

// Within its scope this rank works alone: world() is a world of one and the collectives do nothing.
// For independent jobs split over the ranks (bench-gmm's rows), each of which is a whole run.
class AloneOnThisRank {
 public:
  AloneOnThisRank();
  ~AloneOnThisRank();
  AloneOnThisRank(const AloneOnThisRank&) = delete;
  AloneOnThisRank& operator=(const AloneOnThisRank&) = delete;

 private:
  World saved_;
};

// The rows [begin, end) of a global batch of `n` this rank trains on. ConfigError naming `key`
// when n is not a multiple of the world size.
std::pair<int64_t, int64_t> rank_slice(int64_t n, const std::string& key);

}  // namespace retort
