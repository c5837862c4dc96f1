#include "retort/bench/commands.h"

#include <fmt/format.h>

#include "retort/bench/distill_bench.h"
#include "retort/bench/gmm_bench.h"
#include "retort/run/run_folder.h"

namespace retort {

CommandReport bench_gmm_command(ConfigNode root, const RunRequest& run) {
  auto cfg = parse_gmm_bench_config(root);
  auto results = run_gmm_bench(cfg, run.out, {run.progress});
  return {results_markdown(results), fmt::format("wrote {}/results.json, results.md, overview.png\n", run.out.string())};
}

CommandReport bench_distill_command(ConfigNode root, const RunRequest& run) {
  auto cfg = read_distill_bench_config(root);
  auto results = run_distill_bench(cfg, run.out, run.progress, run_identity(root.resolved_toml(), cfg.base.teacher));
  return {distill_results_markdown(results),
          fmt::format("wrote {}/results.md, results.json, runs/*/samples.png\n", run.out.string())};
}

}  // namespace retort
