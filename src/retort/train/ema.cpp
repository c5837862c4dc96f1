#include "retort/train/ema.h"

#include <algorithm>

#include "retort/train/multi_tensor_adamw.h"

namespace retort {

void ema_update(torch::nn::Module& ema, torch::nn::Module& model, double decay, Batching batching) {
  torch::NoGradGuard ng;
  auto src = model.parameters(true);
  auto dst = ema.parameters(true);
  TORCH_CHECK(src.size() == dst.size(), "ema_update: ", dst.size(), " averaged parameters for ", src.size());
  if (!dst.empty() && batches(dst[0], batching)) {  // two kernel launches on a GPU, not two per tensor
    at::_foreach_mul_(dst, decay);
    at::_foreach_add_(dst, src, 1 - decay);
  } else {
    for (size_t i = 0; i < dst.size(); ++i) dst[i].mul_(decay).add_(src[i], 1 - decay);
  }
  auto sb = model.buffers(true);
  auto db = ema.buffers(true);
  TORCH_CHECK(sb.size() == db.size(), "ema_update: ", db.size(), " averaged buffers for ", sb.size());
  for (size_t i = 0; i < db.size(); ++i) db[i].copy_(sb[i]);
}

double ema_decay(double decay, int64_t step) { return std::min(decay, double(step + 1) / double(step + 10)); }

}  // namespace retort
