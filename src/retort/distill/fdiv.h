// The f-divergence family of distribution matching (f-distill). With D_f(p||q) = E_q f(p/q) and
// r = p_real / p_fake, the generator gradient is the reverse-KL (DMD) gradient times
// h(r) = r^2 f''(r):
//   reverse KL   f = -log r                        h = 1
//   KL           f = r log r                       h = r
//   JS           f = r log r - (r+1) log((r+1)/2)  h = r / (r + 1)
//   softened RKL f = (r+1) log((r+1)/(2r))         h = 1 / (r + 1)   (FVGen, seed 000 Eq. 8)
//   sq. Hellinger f = (sqrt(r) - 1)^2              h = sqrt(r) / 2
//   Jeffreys     f = (r - 1) log r                 h = r + 1
#pragma once
#include <string>
#include <vector>

#include <torch/torch.h>

namespace retort {

enum class FDivergence { ReverseKL, KL, JS, SoftenedRKL, Hellinger, Jeffreys };

FDivergence parse_fdivergence(const std::string& name);
std::string fdivergence_name(FDivergence f);
std::vector<std::string> fdivergence_names();
// True when h depends on r (a discriminator is needed).
bool needs_ratio(FDivergence f);
// f(r), for checks of D_f by quadrature.
torch::Tensor f_of_ratio(FDivergence f, const torch::Tensor& r);
// h(r) from the discriminator logit l = log r (already clamped), computed stably in l.
torch::Tensor h_of_logit(FDivergence f, const torch::Tensor& logit);

}  // namespace retort
