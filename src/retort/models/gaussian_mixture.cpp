#include "retort/models/gaussian_mixture.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <set>

#include "retort/core/error.h"

namespace retort {

GaussianMixture::GaussianMixture(const std::vector<MixtureComponent>& components) {
  if (components.empty()) throw ConfigError("target: the mixture has no components");
  dim_ = static_cast<int64_t>(components[0].mean.size());
  if (dim_ < 1) throw ConfigError("target.mode[0].mean: empty mean");
  const int64_t K = components.size();
  std::vector<torch::Tensor> means, vecs, vals;
  std::vector<double> weights;
  std::vector<int64_t> classes;
  std::set<int64_t> class_set;
  bool any_class = false, all_class = true;
  for (int64_t k = 0; k < K; ++k) {
    const auto& c = components[k];
    auto where = fmt::format("target.mode[{}]", k);
    if (int64_t(c.mean.size()) != dim_)
      throw ConfigError(fmt::format("{}.mean has {} entries; mode 0 has {}", where, c.mean.size(), dim_));
    if (int64_t(c.cov.size()) != dim_)
      throw ConfigError(fmt::format("{}.cov must be {}x{}", where, dim_, dim_));
    for (const auto& row : c.cov)
      if (int64_t(row.size()) != dim_) throw ConfigError(fmt::format("{}.cov must be {}x{}", where, dim_, dim_));
    if (!(c.weight > 0) || !std::isfinite(c.weight))
      throw ConfigError(fmt::format("{}.weight = {} must be positive", where, c.weight));
    auto cov = torch::empty({dim_, dim_}, torch::kFloat64);
    for (int64_t i = 0; i < dim_; ++i)
      for (int64_t j = 0; j < dim_; ++j) cov[i][j] = c.cov[i][j];
    if (!torch::allclose(cov, cov.t(), 1e-9, 1e-12))
      throw ConfigError(fmt::format("{}.cov is not symmetric", where));
    auto [evals, evecs] = torch::linalg_eigh(cov, "L");
    double smallest = evals.min().item<double>();
    if (!(smallest > 1e-12))
      throw ConfigError(fmt::format("{}.cov is not positive definite (smallest eigenvalue {:.3g})", where,
                                    smallest));
    means.push_back(torch::tensor(c.mean, torch::kFloat64));
    vecs.push_back(evecs);
    vals.push_back(evals);
    weights.push_back(c.weight);
    classes.push_back(c.cls);
    if (c.cls == kNullClass) all_class = false;
    else if (c.cls < 0) throw ConfigError(fmt::format("{}.class = {} must be >= 0", where, c.cls));
    else any_class = true, class_set.insert(c.cls);
  }
  if (any_class && !all_class)
    throw ConfigError("target: either every mode has a class or none has");
  means_ = torch::stack(means).to(torch::kFloat32);
  eigvecs_ = torch::stack(vecs).to(torch::kFloat32);
  eigvals_ = torch::stack(vals).to(torch::kFloat32);
  auto w = torch::tensor(weights, torch::kFloat64);
  weights_ = (w / w.sum()).to(torch::kFloat32);
  classes_ = torch::tensor(classes, torch::kLong);
  class_list_.assign(class_set.begin(), class_set.end());
}

std::vector<MixtureComponent> ring_components(int64_t modes, int64_t dim, double radius, double std, bool classes) {
  if (dim < 2) throw ConfigError("target.dim must be at least 2 for a ring");
  std::vector<MixtureComponent> comps;
  for (int64_t k = 0; k < modes; ++k) {
    MixtureComponent c;
    c.mean.assign(dim, 0.0);
    double a = 2 * M_PI * double(k) / double(modes);
    c.mean[0] = radius * std::cos(a);
    c.mean[1] = radius * std::sin(a);
    c.cov.assign(dim, std::vector<double>(dim, 0.0));
    for (int64_t i = 0; i < dim; ++i) c.cov[i][i] = std * std;
    c.cls = classes ? k : kNullClass;
    comps.push_back(std::move(c));
  }
  return comps;
}

std::vector<double> GaussianMixture::class_weights() const {
  std::vector<double> out;
  for (int64_t c : class_list_) out.push_back(weights_.masked_select(classes_ == c).sum().item<double>());
  return out;
}

torch::Tensor GaussianMixture::masked_log_weights(const torch::Tensor& labels, int64_t batch) const {
  auto logw = weights_.log().to(means_.device()).unsqueeze(0).expand({batch, num_components()});
  if (!labels.defined()) return logw;
  auto lab = labels.to(classes_.device());
  auto cls = classes_.unsqueeze(0);  // [1, K]
  auto keep = (lab.unsqueeze(1) == kNullClass) | (cls == lab.unsqueeze(1));
  auto has_any = keep.any(1);
  if (!has_any.all().item<bool>()) {
    auto bad = lab.masked_select(~has_any)[0].item<int64_t>();
    throw Error(fmt::format("class {} has no component in the target mixture", bad));
  }
  return logw.masked_fill(~keep.to(logw.device()), -std::numeric_limits<float>::infinity());
}

torch::Tensor GaussianMixture::component_log_prob(const torch::Tensor& x, const torch::Tensor& alpha,
                                                  const torch::Tensor& sigma, torch::Tensor* z_out,
                                                  torch::Tensor* var_out) const {
  // In each component's eigenbasis the covariance alpha^2 Sigma_k + sigma^2 I is diagonal.
  auto a = alpha.reshape({-1, 1, 1}), s = sigma.reshape({-1, 1, 1});
  auto diff = x.unsqueeze(1) - a * means_.unsqueeze(0);                       // [B, K, D]
  auto z = torch::einsum("bkd,kde->bke", {diff, eigvecs_});                    // [B, K, D]
  auto var = a * a * eigvals_.unsqueeze(0) + s * s;                            // [B, K, D]
  auto lp = -0.5 * (z * z / var).sum(-1) - 0.5 * var.log().sum(-1) - 0.5 * dim_ * std::log(2 * M_PI);
  if (z_out) *z_out = z;
  if (var_out) *var_out = var;
  return lp;
}

torch::Tensor GaussianMixture::log_prob(const torch::Tensor& x, const torch::Tensor& alpha,
                                        const torch::Tensor& sigma, const torch::Tensor& labels) const {
  auto lp = component_log_prob(x, alpha, sigma, nullptr, nullptr);
  return torch::logsumexp(lp + masked_log_weights(labels, x.size(0)), 1);
}

torch::Tensor GaussianMixture::eps(const torch::Tensor& x, const torch::Tensor& alpha,
                                   const torch::Tensor& sigma, const torch::Tensor& labels,
                                   torch::Tensor* responsibilities) const {
  torch::Tensor z, var;
  auto lp = component_log_prob(x, alpha, sigma, &z, &var);
  auto w = torch::softmax(lp + masked_log_weights(labels, x.size(0)), 1);  // [B, K]
  if (responsibilities) *responsibilities = w;
  // -grad log N_k = C_k^{-1}(x - alpha mu_k) = U_k (z / var); eps = sigma sum_k w_k U_k (z / var).
  auto v = torch::einsum("bk,bke,kde->bd", {w, z / var, eigvecs_});
  return sigma.reshape({-1, 1}) * v;
}

torch::Tensor GaussianMixture::mahalanobis2(const torch::Tensor& x) const {
  auto diff = x.unsqueeze(1) - means_.unsqueeze(0);
  auto z = torch::einsum("bkd,kde->bke", {diff, eigvecs_});
  return (z * z / eigvals_.unsqueeze(0)).sum(-1);
}

torch::Tensor GaussianMixture::sample(int64_t n, Rng& rng, const torch::Tensor& labels,
                                      torch::Tensor* components) const {
  const auto device = means_.device();
  torch::Tensor comp;
  if (!labels.defined()) {
    comp = rng.categorical(weights_, n, device);
  } else {
    auto logw = masked_log_weights(labels.to(device), labels.size(0));
    comp = at::empty({labels.size(0)}, torch::kLong);
    auto probs = torch::softmax(logw, 1).cpu().to(torch::kDouble);
    auto u = rng.rand({labels.size(0)}).to(torch::kDouble);
    // inverse-CDF per row
    auto cdf = probs.cumsum(1);
    comp = (cdf < u.unsqueeze(1)).sum(1).clamp_max(num_components() - 1).to(device);
  }
  auto eps = rng.randn({comp.size(0), dim_}, device);
  auto scaled = eps * eigvals_.index_select(0, comp).sqrt();
  auto x = means_.index_select(0, comp) + torch::einsum("bde,be->bd", {eigvecs_.index_select(0, comp), scaled});
  if (components) *components = comp;
  return x;
}

GaussianMixture GaussianMixture::project(const torch::Tensor& P) const {
  GaussianMixture g;
  auto Pf = P.to(means_.options());
  g.dim_ = P.size(1);
  g.means_ = means_.matmul(Pf);
  // Sigma_k projected: P^T U diag(l) U^T P, re-diagonalised.
  auto cov = torch::einsum("kde,ke,kfe->kdf", {eigvecs_, eigvals_, eigvecs_});
  auto pcov = torch::einsum("dp,kdf,fq->kpq", {Pf, cov, Pf}).to(torch::kFloat64);
  auto [evals, evecs] = torch::linalg_eigh(pcov, "L");
  g.eigvals_ = evals.to(torch::kFloat32).clamp_min(1e-12);
  g.eigvecs_ = evecs.to(torch::kFloat32);
  g.weights_ = weights_;
  g.classes_ = classes_;
  g.class_list_ = class_list_;
  return g;
}

GaussianMixture GaussianMixture::to(const torch::Device& device) const {
  GaussianMixture g = *this;
  g.means_ = means_.to(device);
  g.eigvecs_ = eigvecs_.to(device);
  g.eigvals_ = eigvals_.to(device);
  g.weights_ = weights_.to(device);
  g.classes_ = classes_.to(device);
  return g;
}

MixtureTeacher::MixtureTeacher(GaussianMixture mixture, Schedule schedule)
    : mixture_(std::move(mixture)), schedule_(std::move(schedule)) {}

torch::Tensor MixtureTeacher::eps(const torch::Tensor& xt, const torch::Tensor& t, const Cond& cond) {
  if (cond.embedding.defined())
    throw Error("the analytic mixture teacher has no condition embedding; use fake = \"delta\"");
  auto abar = schedule_.alpha_bar(t);
  return mixture_.eps(xt, abar.sqrt(), (1 - abar).sqrt(), cond.labels);
}

torch::Tensor MixtureTeacher::log_prob(const torch::Tensor& xt, const torch::Tensor& t, const Cond& cond) const {
  auto abar = schedule_.alpha_bar(t);
  return mixture_.log_prob(xt, abar.sqrt(), (1 - abar).sqrt(), cond.labels);
}

}  // namespace retort
