#include "retort/bench/step_bench.h"

#include <chrono>

#include <nlohmann/json.hpp>

#include "retort/core/rng.h"
#include "retort/diffusion/timesteps.h"
#include "retort/distill/objective.h"
#include "retort/models/mlp.h"
#include "retort/train/distill_loop.h"

namespace retort {

std::string run_step_bench(const StepBenchOptions& o) {
  auto runtime = apply_runtime(o.runtime);
  Schedule schedule;
  MlpOptions mo;
  mo.dim = o.dim;
  mo.hidden = o.hidden;
  mo.blocks = o.blocks;
  MlpDenoiser net(mo, schedule);
  auto opt = make_adamw(net->parameters(), OptimOptions{});
  Rng rng(0);
  // Fixed data, drawn once, so the timed loop is the step alone.
  auto x0 = rng.randn({o.batch, o.dim});
  auto t = schedule.snap(rng.rand({o.batch}) * 0.98 + 0.02);
  auto eps = rng.randn({o.batch, o.dim});
  auto abar = schedule.alpha_bar(t);
  auto xt = per_sample(abar.sqrt(), x0) * x0 + per_sample((1 - abar).sqrt(), x0) * eps;
  auto step = [&] {
    opt.zero_grad();
    auto loss = denoising_loss(net->eps(xt, t, Cond{}), eps);
    loss.backward();
    opt.step();
  };
  for (int64_t i = 0; i < o.warmup; ++i) step();
  auto t0 = std::chrono::steady_clock::now();
  for (int64_t i = 0; i < o.steps; ++i) step();
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  nlohmann::json j = {{"impl", "libtorch"}, {"ms_per_step", 1000 * s / o.steps}, {"batch", o.batch},
                      {"dim", o.dim}, {"hidden", o.hidden}, {"blocks", o.blocks}, {"steps", o.steps},
                      {"runtime", runtime}};
  return j.dump();
}

}  // namespace retort
