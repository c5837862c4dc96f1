// Averaging gradients over the ranks (data parallelism), as PyTorch DDP's c10d::Reducer does.
//
// A parameter list's gradients are packed into buckets, the last parameters first (the backward
// pass reaches the last layers first), the first bucket at most 1 MiB and the others
// runtime.bucket_mb (DDP's sizes), so the first all-reduce can start early. A hook on every
// parameter's gradient accumulator counts its gradients in; once a bucket holds as many gradients
// as the same list's previous backward pass gave it, the bucket's all-reduce starts while the
// backward pass goes on (runtime.overlap). `average_gradients`, called after the backward pass,
// starts the buckets not started yet, waits for all and writes the means back.
//
// Correct whatever the graph does: a bucket started too early (a parameter received another
// gradient, or a gradient was zeroed or replaced, after the start) is recognised by the gradients'
// identities and version counters and all-reduced again. Every rank runs the same graph, so every
// rank starts the same buckets in the same order, as the collectives require.
#pragma once
#include <vector>

#include <torch/torch.h>

namespace retort {

// Replaces every defined gradient of `params` by its mean over the ranks. Nothing on a world of one.
void average_gradients(const std::vector<torch::Tensor>& params);

// How the gradient buckets of this process went: all-reduces started by the hooks during a backward
// pass, started after it, and started too early and done again.
struct BucketCounts {
  int64_t during_backward = 0, after_backward = 0, redone = 0;
};
BucketCounts bucket_counts();

// Averages `tensors` in place over the ranks, in buckets of runtime.bucket_mb in list order, after
// the fact (no hooks): bench-allreduce's measure of the collective alone.
void all_reduce_mean(const std::vector<torch::Tensor>& tensors);

}  // namespace retort
