// Fake scores: models of the generator's own distribution, trained online (VSD, ASD's phi, DMD).
// Each wraps a frozen base (the teacher) so it starts exactly at the teacher's prediction.
#pragma once
#include <string>
#include <vector>

#include "retort/models/denoiser.h"
#include "retort/models/mlp.h"

namespace retort {

// eps_fake = eps_base + delta(x_t, t, cond), delta a small MLP whose output layer starts at zero.
// The LoRA analog for analytic teachers that have no weights to adapt.
class DeltaFakeImpl : public Denoiser {
 public:
  DeltaFakeImpl(DenoiserPtr base, const MlpOptions& delta_opts, Schedule schedule);
  torch::Tensor eps(const torch::Tensor& xt, const torch::Tensor& t, const Cond& cond) override;
  MlpDenoiser delta{nullptr};

 private:
  DenoiserPtr base_;  // not registered: frozen and never saved with the fake
};
TORCH_MODULE(DeltaFake);

// ASD's phi as textual inversion: the frozen base queried with a learnable condition embedding
// in place of the prompt's, initialised from the embedding of the condition it stands in for.
class LearnedConditionImpl : public Denoiser {
 public:
  LearnedConditionImpl(DenoiserPtr base, const Cond& init_from);
  torch::Tensor eps(const torch::Tensor& xt, const torch::Tensor& t, const Cond& cond) override;
  torch::Tensor phi;

 private:
  DenoiserPtr base_;
};
TORCH_MODULE(LearnedCondition);

// ASD's phi as textual inversion over several conditions: one learnable embedding per class of
// `classes` (for 3-D, one per view suffix of the prompt), each initialised from the base's own
// embedding of that class; a sample's label picks its row. Labels outside `classes` are an Error.
class ClassEmbeddingFakeImpl : public Denoiser {
 public:
  ClassEmbeddingFakeImpl(DenoiserPtr base, const std::vector<int64_t>& classes);
  torch::Tensor eps(const torch::Tensor& xt, const torch::Tensor& t, const Cond& cond) override;
  torch::Tensor phi;  // [K, E]

 private:
  DenoiserPtr base_;
  std::vector<int64_t> classes_;
};
TORCH_MODULE(ClassEmbeddingFake);

// A LoRA copy of an MLP teacher: same weights, frozen, plus rank-r adapters (and the camera
// projection, if any, left trainable as in ASD's official code).
MlpDenoiser lora_copy(MlpDenoiserImpl& teacher, int64_t rank, double alpha);

std::vector<std::string> fake_kind_names();  // delta, lora, embedding

}  // namespace retort
