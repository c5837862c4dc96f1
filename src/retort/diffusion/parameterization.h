// Conversions between what a network predicts (eps, x0 or v = alpha eps - sigma x0) and the score.
// alpha and sigma are per-sample [B] tensors; x tensors are [B, ...].
#pragma once
#include <string>

#include <torch/torch.h>

namespace retort {

enum class Prediction { Eps, X0, V };
Prediction parse_prediction(const std::string& name);  // "eps", "x0", "v"

torch::Tensor x0_from_eps(const torch::Tensor& xt, const torch::Tensor& eps, const torch::Tensor& alpha,
                          const torch::Tensor& sigma);
torch::Tensor eps_from_x0(const torch::Tensor& xt, const torch::Tensor& x0, const torch::Tensor& alpha,
                          const torch::Tensor& sigma);
torch::Tensor v_from_eps_x0(const torch::Tensor& eps, const torch::Tensor& x0, const torch::Tensor& alpha,
                            const torch::Tensor& sigma);
torch::Tensor eps_from_v(const torch::Tensor& xt, const torch::Tensor& v, const torch::Tensor& alpha,
                         const torch::Tensor& sigma);
torch::Tensor x0_from_v(const torch::Tensor& xt, const torch::Tensor& v, const torch::Tensor& alpha,
                        const torch::Tensor& sigma);
// score = grad log p_t(x_t) = -eps / sigma.
torch::Tensor score_from_eps(const torch::Tensor& eps, const torch::Tensor& sigma);
torch::Tensor eps_from_score(const torch::Tensor& score, const torch::Tensor& sigma);
// Whatever the network predicts, as eps.
torch::Tensor to_eps(Prediction kind, const torch::Tensor& out, const torch::Tensor& xt,
                     const torch::Tensor& alpha, const torch::Tensor& sigma);
// The regression target for `kind` given the clean sample and the injected noise.
torch::Tensor training_target(Prediction kind, const torch::Tensor& x0, const torch::Tensor& eps,
                              const torch::Tensor& alpha, const torch::Tensor& sigma);

}  // namespace retort
