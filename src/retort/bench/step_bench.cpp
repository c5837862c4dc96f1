#include "retort/bench/step_bench.h"

#include <algorithm>
#include <chrono>

#include <nlohmann/json.hpp>

#include "retort/core/rng.h"
#include "retort/diffusion/timesteps.h"
#include "retort/distill/objective.h"
#include "retort/field/hash_grid.h"
#include "retort/models/mlp.h"
#include "retort/train/distill_loop.h"

namespace retort {

const std::vector<std::string>& step_bench_workloads() {
  static const std::vector<std::string> w = {"mlp", "hash-encoding"};
  return w;
}

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Forward + backward of the encoding, kernel and vectorised in turn, `steps` rounds of each after
// `warmup`; medians per round.
std::string hash_encoding_bench(const StepBenchOptions& o, const nlohmann::json& runtime) {
  HashGridOptions ho;  // configs/text3d.toml's [field]
  ho.levels = 8;
  ho.log2_table = 14;
  ho.features = 2;
  ho.base_resolution = 8;
  ho.max_resolution = 64;
  HashGridEncoding enc(ho);
  Rng rng(0);
  auto points = rng.rand({o.batch, 3}) - 0.5;
  auto weights = rng.randn({o.batch, enc->output_dim()});
  auto step = [&](bool kernel) {
    enc->zero_grad();
    auto out = kernel ? enc->forward(points) : enc->forward_vectorised(points);
    (out * weights).sum().backward();
  };
  for (int64_t i = 0; i < o.warmup; ++i) step(i % 2 == 0);
  std::vector<double> kernel, vectorised;
  for (int64_t i = 0; i < o.steps; ++i)
    for (bool k : {true, false}) {
      auto t0 = std::chrono::steady_clock::now();
      step(k);
      (k ? kernel : vectorised).push_back(1000 * seconds_since(t0));
    }
  const double km = median(kernel), vm = median(vectorised);
  nlohmann::json j = {{"workload", "hash-encoding"}, {"points", o.batch},  {"levels", ho.levels},
                      {"log2_table", ho.log2_table},  {"kernel_ms", km},  {"vectorised_ms", vm},
                      {"speedup", vm / km},            {"rounds", o.steps}, {"runtime", runtime}};
  return j.dump();
}

}  // namespace

std::string run_step_bench(const StepBenchOptions& o) {
  auto runtime = apply_runtime(o.runtime);
  if (o.workload == "hash-encoding") return hash_encoding_bench(o, runtime);
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
