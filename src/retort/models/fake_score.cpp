#include "retort/models/fake_score.h"

#include <algorithm>

#include <fmt/format.h>

#include "retort/core/error.h"

namespace retort {

DeltaFakeImpl::DeltaFakeImpl(DenoiserPtr base, const MlpOptions& delta_opts, Schedule schedule)
    : base_(std::move(base)) {
  MlpOptions o = delta_opts;
  o.zero_out = true;
  delta = register_module("delta", MlpDenoiser(o, std::move(schedule)));
}

torch::Tensor DeltaFakeImpl::eps(const torch::Tensor& xt, const torch::Tensor& t, const Cond& cond) {
  torch::Tensor base_eps;
  {
    torch::NoGradGuard ng;  // the base is frozen; only x_t-gradients through delta matter
    base_eps = base_->eps(xt, t, cond);
  }
  return base_eps + delta->eps(xt, t, cond);
}

LearnedConditionImpl::LearnedConditionImpl(DenoiserPtr base, const Cond& init_from) : base_(std::move(base)) {
  torch::Tensor e;
  {
    torch::NoGradGuard ng;
    e = base_->condition_embedding(init_from, 1)[0].detach().clone();
  }
  phi = register_parameter("phi", e);
}

torch::Tensor LearnedConditionImpl::eps(const torch::Tensor& xt, const torch::Tensor& t, const Cond& cond) {
  Cond c = cond;
  c.embedding = phi.unsqueeze(0).expand({xt.size(0), phi.size(0)});
  return base_->eps(xt, t, c);
}

ClassEmbeddingFakeImpl::ClassEmbeddingFakeImpl(DenoiserPtr base, const std::vector<int64_t>& classes)
    : base_(std::move(base)), classes_(classes) {
  if (classes.empty()) throw Error("ClassEmbeddingFake: no classes");
  torch::Tensor e;
  {
    torch::NoGradGuard ng;
    auto labels = torch::tensor(classes, torch::kInt64).to(base_->parameters().front().device());
    e = base_->condition_embedding(Cond::classes(labels), int64_t(classes.size())).detach().clone();
  }
  phi = register_parameter("phi", e);
}

torch::Tensor ClassEmbeddingFakeImpl::eps(const torch::Tensor& xt, const torch::Tensor& t, const Cond& cond) {
  if (!cond.labels.defined()) throw Error("ClassEmbeddingFake: the condition has no labels");
  auto labels = cond.labels.to(torch::kCPU);
  std::vector<int64_t> rows(labels.size(0));
  auto acc = labels.accessor<int64_t, 1>();
  for (int64_t i = 0; i < labels.size(0); ++i) {
    auto it = std::find(classes_.begin(), classes_.end(), acc[i]);
    if (it == classes_.end()) throw Error(fmt::format("ClassEmbeddingFake: label {} has no learned embedding", acc[i]));
    rows[i] = it - classes_.begin();
  }
  Cond c = cond;
  c.embedding = phi.index_select(0, torch::tensor(rows, torch::kInt64).to(phi.device()));
  return base_->eps(xt, t, c);
}

MlpDenoiser lora_copy(MlpDenoiserImpl& teacher, int64_t rank, double alpha) {
  MlpDenoiser copy(teacher.trunk->options(), teacher.schedule, teacher.prediction);
  {
    torch::NoGradGuard ng;
    auto src = teacher.named_parameters();
    for (auto& p : copy->named_parameters()) p.value().copy_(src[p.key()]);
  }
  copy->to(teacher.parameters().front().device());
  enable_lora_everywhere(*copy, rank, alpha);
  auto modules = copy->trunk->named_modules();
  if (auto* cam = modules.find("camera_proj"))
    for (auto& p : (*cam)->parameters()) p.set_requires_grad(true);
  return copy;
}

std::vector<std::string> fake_kind_names() { return {"delta", "lora", "embedding"}; }

}  // namespace retort
