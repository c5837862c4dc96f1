// The keys of ObjectiveOptions, declared once; every pipeline reads them through this table.
#include <fmt/format.h>

#include "retort/distill/objective.h"

namespace retort {

const OptionTable<ObjectiveOptions>& objective_option_table() {
  static const auto table = [] {
    using O = ObjectiveOptions;
    OptionTable<O> t;
    t.number("cfg_scale", &O::cfg_scale, 0, 1000, "λ, the guidance scale of the real score (1 = none)")
        .named("weighting", &O::weighting, weighting_names(),
               "ω(t) of SDS / VSD / ASD (and unnormalised DMD): sigma2 = 1 − ᾱ_t, uniform, alpha_sigma")
        .number("gamma", &O::gamma, -10, 10, "ASD discriminator weight γ (seed 002 Eq. 5/6)")
        .number("eta", &O::eta, 0, 10, "ASD discriminator weight η on real data (Eq. 5)")
        .flag("asd_real", &O::asd_real, "ASD with real data (Eq. 5) instead of Eq. 6")
        .flag("dmd_normalize", &O::dmd_normalize,
              "DMD's per-sample normaliser mean|x0 − x̂0_real|; false: ω(t)(ε_real − ε_fake)")
        .number("logit_clamp", &O::logit_clamp, 0, 100, "clamp of the discriminator logit before r = exp(ℓ)")
        .flag("normalize_h", &O::normalize_h, "divide h(r) by its batch mean (f-distill)")
        .number("gan_weight", &O::gan_weight, 0, 1e6, "non-saturating GAN term on the generator (DMD2)")
        .number("disc_weight", &O::disc_weight, 0, 1e6,
                "weight of the discriminator's loss next to the fake score's denoising loss in one critic update")
        .number("r1_weight", &O::r1_weight, 0, 1e6,
                "approximate R1 penalty on the discriminator: weight of mean (ℓ(x_t) − ℓ(x_t + r1_sigma·n))² on real "
                "samples; 0 = off")
        .number("r1_sigma", &O::r1_sigma, 1e-6, 10, "size of the approximate R1 perturbation, in units of x_t");
    return t;
  }();
  return table;
}

void check_objective_options(ConfigNode& n, const std::string& method, const ObjectiveOptions& o) {
  if (method == "dmd2" && o.gan_weight <= 0) n.fail("gan_weight", "dmd2 is DMD plus a GAN term: set gan_weight > 0");
}

}  // namespace retort
