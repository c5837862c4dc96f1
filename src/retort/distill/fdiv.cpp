#include "retort/distill/fdiv.h"

#include <fmt/format.h>
#include <fmt/ranges.h>  // fmt::join ({fmt} 11 moved it here)

#include "retort/core/error.h"

namespace retort {

std::vector<std::string> fdivergence_names() {
  return {"dmd", "kl", "js", "softened_rkl", "hellinger", "jeffreys"};
}

FDivergence parse_fdivergence(const std::string& name) {
  if (name == "dmd" || name == "rkl") return FDivergence::ReverseKL;
  if (name == "kl") return FDivergence::KL;
  if (name == "js") return FDivergence::JS;
  if (name == "softened_rkl") return FDivergence::SoftenedRKL;
  if (name == "hellinger") return FDivergence::Hellinger;
  if (name == "jeffreys") return FDivergence::Jeffreys;
  throw ConfigError(fmt::format("unknown f-divergence '{}'; known: {}", name, fmt::join(fdivergence_names(), ", ")));
}

std::string fdivergence_name(FDivergence f) {
  switch (f) {
    case FDivergence::ReverseKL: return "rkl";
    case FDivergence::KL: return "kl";
    case FDivergence::JS: return "js";
    case FDivergence::SoftenedRKL: return "softened_rkl";
    case FDivergence::Hellinger: return "hellinger";
    case FDivergence::Jeffreys: return "jeffreys";
  }
  return "?";
}

bool needs_ratio(FDivergence f) { return f != FDivergence::ReverseKL; }

torch::Tensor f_of_ratio(FDivergence f, const torch::Tensor& r) {
  switch (f) {
    case FDivergence::ReverseKL: return -r.log();
    case FDivergence::KL: return r * r.log();
    case FDivergence::JS: return r * r.log() - (r + 1) * ((r + 1) / 2).log();
    case FDivergence::SoftenedRKL: return (r + 1) * ((r + 1) / (2 * r)).log();
    case FDivergence::Hellinger: return (r.sqrt() - 1).pow(2);
    case FDivergence::Jeffreys: return (r - 1) * r.log();
  }
  return {};
}

torch::Tensor h_of_logit(FDivergence f, const torch::Tensor& l) {
  switch (f) {
    case FDivergence::ReverseKL: return torch::ones_like(l);
    case FDivergence::KL: return l.exp();
    case FDivergence::JS: return torch::sigmoid(l);
    case FDivergence::SoftenedRKL: return torch::sigmoid(-l);
    case FDivergence::Hellinger: return 0.5 * (0.5 * l).exp();
    case FDivergence::Jeffreys: return l.exp() + 1;
  }
  return {};
}

}  // namespace retort
