#include "retort/models/denoiser.h"

#include "retort/core/error.h"

namespace retort {

Cond Cond::null(int64_t batch, const torch::Device& device) {
  return Cond::classes(torch::full({batch}, kNullClass, torch::TensorOptions().dtype(torch::kLong).device(device)));
}

Cond Cond::as_null() const {
  Cond c = *this;
  if (labels.defined()) c.labels = torch::full_like(labels, kNullClass);
  c.embedding = torch::Tensor();
  if (concat.defined()) c.concat = torch::zeros_like(concat);
  return c;
}

Cond Cond::dropped(const torch::Tensor& drop) const {
  TORCH_CHECK(!embedding.defined() && !camera.defined(), "Cond::dropped: only labels and concat can be dropped");
  Cond c = *this;
  if (labels.defined()) c.labels = torch::where(drop, torch::full_like(labels, kNullClass), labels);
  if (concat.defined()) {
    auto keep = (~drop).to(concat.scalar_type());
    std::vector<int64_t> shape(concat.dim(), 1);
    shape[0] = concat.size(0);
    c.concat = concat * keep.reshape(shape);
  }
  return c;
}

Cond Cond::index(const torch::Tensor& idx) const {
  Cond c;
  if (labels.defined()) c.labels = labels.index_select(0, idx);
  if (embedding.defined()) c.embedding = embedding.index_select(0, idx);
  if (camera.defined()) c.camera = camera.index_select(0, idx);
  if (concat.defined()) c.concat = concat.index_select(0, idx);
  return c;
}

Cond Cond::slice(int64_t start, int64_t length, const torch::Device& device) const {
  auto part = [&](const torch::Tensor& x) { return x.defined() ? x.narrow(0, start, length).to(device) : x; };
  return Cond{part(labels), part(embedding), part(camera), part(concat)};
}

namespace {
torch::Tensor cat_or_undefined(const torch::Tensor& a, const torch::Tensor& b, const char* what) {
  if (!a.defined() && !b.defined()) return {};
  TORCH_CHECK(a.defined() && b.defined(), "Cond::cat: '", what, "' given on one side only");
  return torch::cat({a, b});
}
}  // namespace

Cond Cond::cat(const Cond& a, const Cond& b) {
  return Cond{cat_or_undefined(a.labels, b.labels, "labels"),
              cat_or_undefined(a.embedding, b.embedding, "embedding"),
              cat_or_undefined(a.camera, b.camera, "camera"), cat_or_undefined(a.concat, b.concat, "concat")};
}

bool Cond::unconditional() const {
  if (embedding.defined()) return false;
  if (concat.defined() && concat.ne(0).any().item<bool>()) return false;
  return !labels.defined() || (labels == kNullClass).all().item<bool>();
}

torch::Tensor Denoiser::condition_embedding(const Cond&, int64_t) {
  throw Error(name() + " has no condition embedding (use a fake score of kind \"delta\" or \"lora\")");
}

torch::Tensor mean_part_logit(const std::vector<torch::Tensor>& parts) {
  auto mean = [](const torch::Tensor& p) { return p.reshape({p.size(0), -1}).mean(1); };
  auto l = mean(parts.at(0));
  for (size_t i = 1; i < parts.size(); ++i) l = l + mean(parts[i]);
  return l / double(parts.size());
}

std::vector<torch::Tensor> trainable_parameters(torch::nn::Module& m) {
  std::vector<torch::Tensor> out;
  for (auto& p : m.parameters())
    if (p.requires_grad()) out.push_back(p);
  return out;
}

void freeze(torch::nn::Module& m) {
  for (auto& p : m.parameters()) p.set_requires_grad(false);
}

torch::Tensor eps_cfg(Denoiser& model, const torch::Tensor& xt, const torch::Tensor& t, const Cond& cond,
                      double scale) {
  if (scale == 1.0) return model.eps(xt, t, cond);
  if (!cond.labels.defined() && !cond.embedding.defined())
    throw Error("classifier-free guidance (scale != 1) needs a class label or a condition embedding");
  if (cond.embedding.defined()) {  // the null branch has no embedding: two calls
    auto e_null = model.eps(xt, t, cond.as_null());
    return e_null + scale * (model.eps(xt, t, cond) - e_null);
  }
  const int64_t B = xt.size(0);
  auto out = model.eps(torch::cat({xt, xt}), torch::cat({t, t}), Cond::cat(cond.as_null(), cond));
  auto e_null = out.narrow(0, 0, B), e_cond = out.narrow(0, B, B);
  return e_null + scale * (e_cond - e_null);
}

}  // namespace retort
