// Every score-distillation objective behind one interface (methods.md section 2).
//
// An objective sees tensors and models only, never a data set, renderer or file, so 2-D, image,
// 3-D and video work reuse it unchanged. Each has two halves:
//  * generator_loss: a loss on x0 (which carries the generator's graph) whose gradient w.r.t. x0
//    is the method's per-sample generator gradient, divided by x0.numel() (the surrogate
//    L = 1/2 mean ||x0 - stopgrad(x0 - grad)||^2 of DMD2's code; mean so published loss weights
//    transfer);
//  * critic_loss: the loss of whatever the method trains online (fake score phi, discriminator),
//    on detached generator samples and, where the method uses them, real samples.
#pragma once
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "retort/core/options.h"
#include "retort/diffusion/schedule.h"
#include "retort/diffusion/timesteps.h"
#include "retort/distill/fdiv.h"
#include "retort/models/denoiser.h"

namespace retort {

struct Models {
  Denoiser* teacher = nullptr;     // frozen real score
  Denoiser* fake = nullptr;        // eps_phi, trained online
  Discriminator* disc = nullptr;   // logit l(x_t, t) for density ratios and GAN terms
};

// Diffusion time and injected noise of one batch: t [B], eps shaped like x0.
struct NoiseDraw {
  torch::Tensor t, eps;
};

struct CriticBatch {
  torch::Tensor x0;  // generated samples, detached
  Cond cond;
  NoiseDraw noise;
  torch::Tensor real_x0;  // undefined when the method uses no real data
  Cond real_cond;
  NoiseDraw real_noise;
  torch::Tensor real_perturbation;  // standard normal, shaped like real_x0; drawn when r1_weight > 0
};

struct ObjectiveNeeds {
  bool fake = false;  // a fake score eps_phi
  bool disc = false;  // a discriminator
  bool real = false;  // real samples in CriticBatch
};

struct ObjectiveOptions {
  double cfg_scale = 1.0;                 // lambda: guidance of the real score
  Weighting weighting = Weighting::Sigma2;  // w(t) of SDS / VSD / ASD (and unnormalised DMD)
  // ASD discriminator (seed 002 Eq. 5 / 6)
  double gamma = -0.5;
  double eta = 0.5;
  bool asd_real = false;  // Eq. 5 (with real data) instead of Eq. 6
  // distribution matching (DMD and the f-divergence family)
  bool dmd_normalize = true;   // DMD's per-sample normaliser mean|x0 - x0_real|
  double logit_clamp = 10.0;   // clamp the discriminator logit before r = exp(l)
  bool normalize_h = false;    // divide h(r) by its batch mean (f-distill)
  // non-saturating GAN term added to the generator loss (DMD2, "gan")
  double gan_weight = 0.0;
  // weight of the discriminator's GAN loss next to the fake score's denoising loss in one critic
  // update (DMD2 uses 1e-2: its discriminator head shares the fake score's encoder)
  double disc_weight = 1.0;
  // approximate R1 penalty on the discriminator (Seaweed-APT): r1_weight * mean over real samples of
  // (l(x_t) - l(x_t + r1_sigma n))^2, a finite-difference stand-in for |grad_x l|^2 that needs no
  // second-order backward through the backbone
  double r1_weight = 0.0;
  double r1_sigma = 0.05;
};

// The keys of ObjectiveOptions (objective_options.cpp); a pipeline reads the rows it uses.
const OptionTable<ObjectiveOptions>& objective_option_table();
// Checks that need the method's name (dmd2 needs gan_weight > 0); throws ConfigError naming the key.
void check_objective_options(ConfigNode& n, const std::string& method, const ObjectiveOptions& o);

class Objective {
 public:
  Objective(std::string name, ObjectiveOptions opts, Schedule schedule)
      : name_(std::move(name)), opts_(opts), schedule_(std::move(schedule)) {}
  virtual ~Objective() = default;

  const std::string& name() const { return name_; }
  const ObjectiveOptions& options() const { return opts_; }
  virtual ObjectiveNeeds needs() const = 0;
  virtual torch::Tensor generator_loss(const torch::Tensor& x0, const Cond& cond, const NoiseDraw& n,
                                       const Models& m) = 0;
  // Objectives with nothing to train return an undefined tensor.
  virtual torch::Tensor critic_loss(const CriticBatch& b, const Models& m) { return {}; }
  // Scalars from the last generator_loss / critic_loss call, for logs (e.g. mean h(r)).
  const std::map<std::string, double>& stats() const { return stats_; }

 protected:
  // x_t = alpha x0 + sigma eps, with alpha and sigma of n.t.
  torch::Tensor noisy(const torch::Tensor& x0, const NoiseDraw& n, torch::Tensor* alpha = nullptr,
                      torch::Tensor* sigma = nullptr) const;
  std::string name_;
  ObjectiveOptions opts_;
  Schedule schedule_;
  std::map<std::string, double> stats_;
};

// The score-based objectives also expose their per-sample gradient w.r.t. x0 (tests check that
// generator_loss differentiates to exactly this).
class GradientObjective : public Objective {
 public:
  using Objective::Objective;
  virtual torch::Tensor generator_grad(const torch::Tensor& x0, const Cond& cond, const NoiseDraw& n,
                                       const Models& m) = 0;
  torch::Tensor generator_loss(const torch::Tensor& x0, const Cond& cond, const NoiseDraw& n,
                               const Models& m) override;
};

// 1/2 mean ||x0 - stopgrad(x0 - grad)||^2: d/dx0 = grad / x0.numel().
torch::Tensor gradient_surrogate(const torch::Tensor& x0, const torch::Tensor& grad);
// Mean squared error per element, the denoising loss of fake scores.
torch::Tensor denoising_loss(const torch::Tensor& pred, const torch::Tensor& target);

std::unique_ptr<Objective> make_objective(const std::string& name, const ObjectiveOptions& opts,
                                          const Schedule& schedule);
std::vector<std::string> objective_names();
// What a method needs, without building it (for config validation).
ObjectiveNeeds objective_needs(const std::string& name, const ObjectiveOptions& opts);

}  // namespace retort
