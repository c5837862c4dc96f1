#include "retort/diffusion/parameterization.h"

#include "retort/core/error.h"
#include "retort/diffusion/schedule.h"

namespace retort {

Prediction parse_prediction(const std::string& name) {
  if (name == "eps") return Prediction::Eps;
  if (name == "x0") return Prediction::X0;
  if (name == "v") return Prediction::V;
  throw ConfigError("unknown prediction '" + name + "'; known: eps, x0, v");
}

torch::Tensor x0_from_eps(const torch::Tensor& xt, const torch::Tensor& eps, const torch::Tensor& alpha,
                          const torch::Tensor& sigma) {
  return (xt - per_sample(sigma, xt) * eps) / per_sample(alpha, xt);
}

torch::Tensor eps_from_x0(const torch::Tensor& xt, const torch::Tensor& x0, const torch::Tensor& alpha,
                          const torch::Tensor& sigma) {
  return (xt - per_sample(alpha, xt) * x0) / per_sample(sigma, xt);
}

torch::Tensor v_from_eps_x0(const torch::Tensor& eps, const torch::Tensor& x0, const torch::Tensor& alpha,
                            const torch::Tensor& sigma) {
  return per_sample(alpha, x0) * eps - per_sample(sigma, x0) * x0;
}

// With alpha^2 + sigma^2 = 1: eps = sigma x_t + alpha v, x0 = alpha x_t - sigma v.
torch::Tensor eps_from_v(const torch::Tensor& xt, const torch::Tensor& v, const torch::Tensor& alpha,
                         const torch::Tensor& sigma) {
  return per_sample(sigma, xt) * xt + per_sample(alpha, xt) * v;
}

torch::Tensor x0_from_v(const torch::Tensor& xt, const torch::Tensor& v, const torch::Tensor& alpha,
                        const torch::Tensor& sigma) {
  return per_sample(alpha, xt) * xt - per_sample(sigma, xt) * v;
}

torch::Tensor score_from_eps(const torch::Tensor& eps, const torch::Tensor& sigma) {
  return -eps / per_sample(sigma, eps);
}

torch::Tensor eps_from_score(const torch::Tensor& score, const torch::Tensor& sigma) {
  return -score * per_sample(sigma, score);
}

torch::Tensor to_eps(Prediction kind, const torch::Tensor& out, const torch::Tensor& xt,
                     const torch::Tensor& alpha, const torch::Tensor& sigma) {
  switch (kind) {
    case Prediction::Eps: return out;
    case Prediction::X0: return eps_from_x0(xt, out, alpha, sigma);
    case Prediction::V: return eps_from_v(xt, out, alpha, sigma);
  }
  return out;
}

torch::Tensor training_target(Prediction kind, const torch::Tensor& x0, const torch::Tensor& eps,
                              const torch::Tensor& alpha, const torch::Tensor& sigma) {
  switch (kind) {
    case Prediction::Eps: return eps;
    case Prediction::X0: return x0;
    case Prediction::V: return v_from_eps_x0(eps, x0, alpha, sigma);
  }
  return eps;
}

}  // namespace retort
