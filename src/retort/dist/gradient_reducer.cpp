#include "retort/dist/gradient_reducer.h"

#include <algorithm>
#include <list>
#include <memory>
#include <mutex>
#include <numeric>

#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/utils/lambda_post_hook.h>
#include <torch/csrc/autograd/variable.h>

#include "retort/dist/world.h"

namespace retort {
namespace {

constexpr int64_t kFirstBucketBytes = int64_t(1) << 20;  // DDP's first bucket

using Bucketing = std::vector<std::vector<size_t>>;

BucketCounts counts;

// `order` (indices into `tensors`) cut into runs of one dtype, the first at most `first_bytes`,
// the others at most `bytes` (a tensor larger than that is a bucket of its own).
Bucketing plan_buckets(const std::vector<torch::Tensor>& tensors, const std::vector<size_t>& order,
                       int64_t first_bytes, int64_t bytes) {
  Bucketing buckets;
  int64_t used = 0;
  for (size_t i : order) {
    const int64_t size = int64_t(tensors[i].nbytes());
    const int64_t cap = buckets.size() == 1 ? first_bytes : bytes;
    const bool fits = !buckets.empty() && tensors[buckets.back().front()].scalar_type() == tensors[i].scalar_type() &&
                      used + size <= cap;
    if (!fits) {
      buckets.emplace_back();
      used = 0;
    }
    buckets.back().push_back(i);
    used += size;
  }
  return buckets;
}

torch::Tensor flatten(const std::vector<torch::Tensor>& tensors) {
  std::vector<torch::Tensor> flat;
  for (const auto& t : tensors) flat.push_back(t.reshape({-1}));
  return torch::cat(flat);
}

// `tensors` = `sum` / world size, piece by piece.
void write_mean(const std::vector<torch::Tensor>& tensors, torch::Tensor sum) {
  torch::NoGradGuard no_grad;
  auto mean = sum.to(tensors.front().device()).div_(world().size);
  int64_t offset = 0;
  for (const auto& t : tensors) {
    t.copy_(mean.narrow(0, offset, t.numel()).view(t.sizes()));
    offset += t.numel();
  }
}

class Reducer {
 public:
  explicit Reducer(std::vector<torch::Tensor> params) : params_(std::move(params)) {
    const size_t n = params_.size();
    std::vector<size_t> last_first(n);
    std::iota(last_first.rbegin(), last_first.rend(), size_t(0));
    for (auto& members : plan_buckets(params_, last_first, std::min(kFirstBucketBytes, gradient_bucket_bytes()),
                                      gradient_bucket_bytes()))
      buckets_.push_back(Bucket{std::move(members)});
    bucket_of_.resize(n);
    for (size_t b = 0; b < buckets_.size(); ++b)
      for (size_t i : buckets_[b].members) bucket_of_[i] = b;
    arrived_.assign(n, 0);
    expected_.assign(n, 0);
    for (size_t i = 0; i < n; ++i) {
      auto acc = params_[i].requires_grad() ? torch::autograd::impl::grad_accumulator(params_[i]) : nullptr;
      if (!acc) continue;
      const uintptr_t key = acc->add_post_hook(std::make_unique<torch::autograd::utils::LambdaPostHook>(
          [this, i](const torch::autograd::variable_list& outputs, const torch::autograd::variable_list&) {
            on_gradient(i);
            return outputs;
          }));
      hooks_.push_back({std::move(acc), key});
    }
  }
  ~Reducer() {
    for (auto& [acc, key] : hooks_) acc->del_post_hook(key);
  }
  Reducer(const Reducer&) = delete;
  Reducer& operator=(const Reducer&) = delete;

  bool holds(const std::vector<torch::Tensor>& params) const {
    return params.size() == params_.size() &&
           std::equal(params.begin(), params.end(), params_.begin(),
                      [](const torch::Tensor& a, const torch::Tensor& b) { return a.is_same(b); });
  }

  void average() {
    std::lock_guard<std::mutex> lock(mutex_);
    for (size_t b = 0; b < buckets_.size(); ++b)
      if (!buckets_[b].started) {
        start(b);
        ++counts.after_backward;
      }
    std::vector<size_t> again;
    for (size_t b : start_order_) {
      Bucket& bucket = buckets_[b];
      if (!bucket.collective) continue;
      auto sum = wait_for(*bucket.collective);
      if (unchanged_since_start(bucket))
        write_mean(bucket.sent, sum);
      else
        again.push_back(b);
    }
    std::sort(again.begin(), again.end());  // the same order on every rank
    for (size_t b : again) {
      ++counts.redone;
      buckets_[b].started = false;
      start(b);
      write_mean(buckets_[b].sent, wait_for(*buckets_[b].collective));
    }
    // The counts of this backward pass predict the next one's, once the hooks saw a whole pass.
    if (counted_whole_pass_) {
      expected_ = arrived_;
      overlap_ = overlap_with_backward();
    }
    counted_whole_pass_ = true;
    std::fill(arrived_.begin(), arrived_.end(), 0);
    for (auto& bucket : buckets_) bucket = Bucket{std::move(bucket.members)};
    start_order_.clear();
  }

 private:
  struct Bucket {
    std::vector<size_t> members;
    bool started = false;
    std::shared_ptr<StartedCollective> collective;  // null when no member had a gradient
    std::vector<torch::Tensor> sent;                // the gradients it carries
    std::vector<std::pair<const c10::TensorImpl*, int64_t>> stamps;  // their identity and version
  };

  void on_gradient(size_t i) {
    std::lock_guard<std::mutex> lock(mutex_);
    ++arrived_[i];
    if (!overlap_) return;
    const size_t b = bucket_of_[i];
    if (buckets_[b].started) return;
    for (size_t m : buckets_[b].members)
      if (arrived_[m] < expected_[m]) return;
    start(b);
    ++counts.during_backward;
  }

  void start(size_t b) {
    Bucket& bucket = buckets_[b];
    bucket.started = true;
    bucket.sent.clear();
    bucket.stamps.clear();
    for (size_t m : bucket.members) {
      const auto& g = params_[m].grad();
      if (!g.defined()) continue;
      bucket.sent.push_back(g);
      bucket.stamps.emplace_back(g.unsafeGetTensorImpl(), g._version());
    }
    start_order_.push_back(b);
    if (bucket.sent.empty()) return;
    torch::NoGradGuard no_grad;
    bucket.collective = start_sum_over_ranks(flatten(bucket.sent));
  }

  bool unchanged_since_start(const Bucket& bucket) const {
    size_t k = 0;
    for (size_t m : bucket.members) {
      const auto& g = params_[m].grad();
      if (!g.defined()) continue;
      if (k == bucket.stamps.size() || bucket.stamps[k] != std::make_pair<const c10::TensorImpl*, int64_t>(
                                                              g.unsafeGetTensorImpl(), g._version()))
        return false;
      ++k;
    }
    return k == bucket.stamps.size();
  }

  std::vector<torch::Tensor> params_;
  std::vector<std::pair<std::shared_ptr<torch::autograd::Node>, uintptr_t>> hooks_;
  std::vector<Bucket> buckets_;
  std::vector<size_t> bucket_of_, start_order_;
  std::vector<int> arrived_, expected_;
  bool counted_whole_pass_ = false;  // the hooks were in place for the whole backward pass
  bool overlap_ = false;             // start buckets from the hooks
  std::mutex mutex_;
};

// The reducers of the parameter lists in use, most recent first. A few at most (a teacher; a
// generator and its critic): older ones, of finished runs in this process, are dropped with their hooks.
Reducer& reducer_for(const std::vector<torch::Tensor>& params) {
  static std::list<std::unique_ptr<Reducer>> recent;
  auto it = std::find_if(recent.begin(), recent.end(), [&](const auto& r) { return r->holds(params); });
  if (it != recent.end()) {
    recent.splice(recent.begin(), recent, it);
  } else {
    recent.push_front(std::make_unique<Reducer>(params));
    if (recent.size() > 8) recent.pop_back();
  }
  return *recent.front();
}

}  // namespace

void average_gradients(const std::vector<torch::Tensor>& params) {
  if (!world().distributed() || params.empty()) return;
  reducer_for(params).average();
}

BucketCounts bucket_counts() { return counts; }

void all_reduce_mean(const std::vector<torch::Tensor>& tensors) {
  if (!world().distributed() || tensors.empty()) return;
  std::vector<size_t> order(tensors.size());
  std::iota(order.begin(), order.end(), size_t(0));
  for (const auto& members : plan_buckets(tensors, order, gradient_bucket_bytes(), gradient_bucket_bytes())) {
    std::vector<torch::Tensor> bucket;
    for (size_t i : members) bucket.push_back(tensors[i]);
    write_mean(bucket, wait_for(*start_sum_over_ranks(flatten(bucket))));
  }
}

}  // namespace retort
