#include "retort/text2d/commands.h"

#include <fmt/format.h>

#include "retort/run/run_folder.h"
#include "retort/text2d/bench2d.h"
#include "retort/text2d/generate2d.h"

namespace retort {

CommandReport generate2d_command(ConfigNode root, const RunRequest& run) {
  auto cfg = read_generate2d_config(root);
  root.finish();
  auto r = run_generate2d(cfg, run.out, run.progress, run_identity(root.resolved_toml(), cfg.teacher));
  CommandReport report;
  const auto what = fmt::format("{}{} on {} x {} particles", cfg.method,
                                cfg.method == "asd" && cfg.objective.asd_real ? " (Eq. 5, real data)" : "",
                                cfg.prompts.size(), cfg.particles);
  if (r.seconds_per_iteration > 0)
    report.result = fmt::format("{}: {} iterations, {:.3f} s/iteration in this invocation\n", what, r.iterations,
                                r.seconds_per_iteration);
  else
    report.result = fmt::format("{}: {} iterations, already finished (none trained in this invocation)\n", what,
                                r.iterations);
  report.note = fmt::format("wrote {}/particles.safetensors, particles.png, loss.png\n", run.out.string());
  return report;
}

CommandReport bench2d_command(ConfigNode root, const RunRequest& run) {
  auto cfg = read_bench2d_config(root);
  auto result = run_bench2d(cfg, run.out, run.progress, run_identity(root.resolved_toml(), cfg.base.teacher));
  return {bench2d_markdown(result), fmt::format("wrote {}/results.md, results.json, overview.png, runs/*/\n",
                                                run.out.string())};
}

}  // namespace retort
