// The keys of DistillLoopOptions, declared once; every pipeline reads them through this table.
#include <fmt/format.h>

#include "retort/train/distill_loop.h"

namespace retort {

const OptionTable<DistillLoopOptions>& distill_loop_option_table() {
  static const auto table = [] {
    using L = DistillLoopOptions;
    OptionTable<L> t;
    t.integer("steps", &L::steps, 0, 100'000'000, "generator updates")
        .integer("batch", &L::batch, 1, 1'000'000, "samples per generator update")
        .integer("critic_steps", &L::critic_steps, 1, 1000,
                 "fake-score / discriminator updates per generator update (two-time-scale rule)")
        .flag("share_noise", &L::share_noise, "the first critic update reuses the generator's x0, t and ε")
        .number("lr", [](L& l) -> double& { return l.gen_optim.lr; }, 1e-10, 10, "generator AdamW learning rate")
        .number("critic_lr", [](L& l) -> double& { return l.critic_optim.lr; }, 1e-10, 10,
                "critic (fake score, discriminator) AdamW learning rate")
        .number("lr_half_life", [](L& l) -> double& { return l.gen_optim.half_life; }, 0, 1e9,
                "updates over which the generator's learning rate halves; 0 = constant")
        .number("weight_decay", [](L& l) -> double& { return l.gen_optim.weight_decay; }, 0, 1,
                "generator AdamW weight decay")
        .number("critic_weight_decay", [](L& l) -> double& { return l.critic_optim.weight_decay; }, 0, 1,
                "critic AdamW weight decay")
        .number("grad_clip", [](L& l) -> double& { return l.gen_optim.grad_clip; }, 0, 1e9,
                "generator global-norm gradient clip; 0 = off")
        .number("critic_grad_clip", [](L& l) -> double& { return l.critic_optim.grad_clip; }, 0, 1e9,
                "critic global-norm gradient clip; 0 = off")
        .number("t_min", [](L& l) -> double& { return l.time.min; }, 0, 1,
                "lowest diffusion time (t in [0, 1]; discrete step k is t = (k+1)/T)")
        .number("t_max", [](L& l) -> double& { return l.time.max; }, 0, 1, "highest diffusion time")
        .named("anneal", [](L& l) -> Anneal& { return l.time.anneal; }, {"none", "step", "linear"},
               "step: t_max drops to anneal_to after fraction anneal_at of training; linear: linear decay")
        .number("anneal_to", [](L& l) -> double& { return l.time.anneal_to; }, 0, 1, "t_max after annealing")
        .number("anneal_at", [](L& l) -> double& { return l.time.anneal_at; }, 0, 1,
                "fraction of training at which a step anneal happens")
        .integer("log_every", &L::log_every, 1, 1'000'000, "metrics row every N updates")
        .integer("checkpoint_every", &L::checkpoint_every, 0, 100'000'000, "checkpoint every N updates (and at the end); 0 = none (bench-gmm only: the other commands resume from checkpoints)")
        .number("ema", &L::ema, 0, 0.99999, "decay of the generator's moving average (0 = none)")
        .include(non_finite_option_table(), &L::nonfinite)
        .check([](ConfigNode& n, const L& l) {
          if (l.time.min > l.time.max) n.fail("t_min", fmt::format("{} is above t_max = {}", l.time.min, l.time.max));
        });
    return t;
  }();
  return table;
}

}  // namespace retort
