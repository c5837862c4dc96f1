#include "retort/core/rng.h"

#include <ATen/CPUGeneratorImpl.h>

namespace retort {

Rng::Rng(uint64_t seed) : gen_(at::make_generator<at::CPUGeneratorImpl>(seed)) {}

torch::Tensor Rng::recorded(const char* kind, torch::Tensor drawn) {
  if (record_) record_->emplace_back(kind, drawn.clone());  // a draw may be changed in place later
  return drawn;
}

torch::Tensor Rng::randn(torch::IntArrayRef shape, const torch::Device& device) {
  return recorded("randn", at::randn(shape, gen_, torch::kFloat)).to(device);
}

torch::Tensor Rng::rand(torch::IntArrayRef shape, const torch::Device& device) {
  return recorded("rand", at::rand(shape, gen_, torch::kFloat)).to(device);
}

torch::Tensor Rng::randint(int64_t low, int64_t high, torch::IntArrayRef shape,
                           const torch::Device& device) {
  return recorded("randint", at::randint(low, high, shape, gen_, torch::kLong)).to(device);
}

torch::Tensor Rng::categorical(const torch::Tensor& weights, int64_t n, const torch::Device& device) {
  return recorded("categorical", at::multinomial(weights.to(torch::kCPU, torch::kDouble), n, /*replacement=*/true, gen_))
      .to(device);
}

torch::Tensor Rng::state() const { return gen_.get_state(); }

void Rng::set_state(const torch::Tensor& state) { gen_.set_state(state); }

Rng Rng::fork() {
  auto seed = at::randint(0, int64_t{1} << 62, {1}, gen_, torch::kLong).item<int64_t>();
  return Rng(static_cast<uint64_t>(seed));
}

}  // namespace retort
