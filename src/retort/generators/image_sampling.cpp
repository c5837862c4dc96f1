#include "retort/generators/image_sampling.h"

#include "retort/diffusion/sampler.h"

namespace retort {

torch::Tensor sample_teacher(DiffusionModel& model, const torch::Tensor& labels, const TeacherSampling& opts,
                             Rng& rng, const torch::Tensor& noise) {
  return sample_teacher(model, Cond::classes(labels), labels.size(0), opts, rng, noise);
}

torch::Tensor sample_teacher(DiffusionModel& model, const Cond& all, int64_t N, const TeacherSampling& opts,
                             Rng& rng, const torch::Tensor& noise) {
  model.eval();
  const auto shape = model.shape();
  auto device = model.device();
  auto times = sampling_times(model.schedule, opts.steps);
  std::vector<torch::Tensor> out;
  {
    // The frozen model needs no autograd; InferenceMode also skips version counters and view
    // tracking. The samples leave through torch::cat below, outside it, as ordinary tensors.
    c10::InferenceMode frozen;
    for (int64_t i = 0; i < N; i += opts.batch) {
      const int64_t b = std::min(opts.batch, N - i);
      Cond cond = all.slice(i, b, device);
      auto x = noise.defined() ? noise.narrow(0, i, b).to(device) : rng.randn(shape.batch(b), device);
      EpsFn eps = [&](const torch::Tensor& xt, const torch::Tensor& t) {
        return eps_cfg(model, xt, t, cond, opts.cfg);
      };
      out.push_back(ddim_sample(model.schedule, eps, x, times, SamplerOptions{opts.eta, opts.clip_x0}, rng));
    }
  }
  return torch::cat(out).clamp(-1, 1);
}

torch::Tensor grid_labels(int64_t classes, int64_t per_class) {
  if (classes == 0) return torch::full({per_class}, kNullClass, torch::kInt64);
  return torch::arange(classes, torch::kInt64).repeat_interleave(per_class);
}

torch::Tensor balanced_labels(int64_t classes, int64_t n) {
  if (classes == 0) return torch::full({n}, kNullClass, torch::kInt64);
  return torch::arange(n, torch::kInt64).remainder(classes);
}

}  // namespace retort
