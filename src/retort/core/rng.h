// The program owns its randomness: every draw goes through one seeded CPU generator and is then
// moved to the target device, so a run is reproducible across devices and resumable bit for bit.
#pragma once
#include <torch/torch.h>

#include <string>
#include <utility>
#include <vector>

namespace retort {

class Rng {
 public:
  explicit Rng(uint64_t seed);
  torch::Tensor randn(torch::IntArrayRef shape, const torch::Device& device = torch::kCPU);
  torch::Tensor rand(torch::IntArrayRef shape, const torch::Device& device = torch::kCPU);
  // Integers uniform in [low, high).
  torch::Tensor randint(int64_t low, int64_t high, torch::IntArrayRef shape,
                        const torch::Device& device = torch::kCPU);
  // Indices drawn from unnormalised non-negative weights, with replacement.
  torch::Tensor categorical(const torch::Tensor& weights, int64_t n,
                            const torch::Device& device = torch::kCPU);
  torch::Tensor state() const;
  void set_state(const torch::Tensor& state);
  // A child generator with a seed derived from this one (one stream per run or rank).
  Rng fork();
  // From now on every draw is also appended to `into` as (kind, tensor), kind one of randn, rand,
  // randint, categorical; null stops. bench-step --dump records one update's draws so, for a twin
  // to replay them.
  void record(std::vector<std::pair<std::string, torch::Tensor>>* into) { record_ = into; }

 private:
  torch::Tensor recorded(const char* kind, torch::Tensor drawn);
  at::Generator gen_;
  std::vector<std::pair<std::string, torch::Tensor>>* record_ = nullptr;
};

}  // namespace retort
