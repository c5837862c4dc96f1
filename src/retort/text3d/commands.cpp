#include "retort/text3d/commands.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "retort/run/run_folder.h"
#include "retort/text3d/eval3d.h"
#include "retort/text3d/generate3d.h"

namespace retort {

CommandReport generate3d_command(ConfigNode root, const RunRequest& run) {
  auto cfg = read_generate3d_config(root);
  root.finish();
  auto r = run_generate3d(cfg, run.out, run.progress, run_identity(root.resolved_toml(), cfg.teacher));
  CommandReport report;
  if (r.seconds_per_iteration > 0)
    report.result = fmt::format("{} '{}': {} iterations, {:.3f} s/iteration in this invocation\n", cfg.method,
                                cfg.prompt, r.iterations, r.seconds_per_iteration);
  else
    report.result = fmt::format("{} '{}': {} iterations, already finished (none trained in this invocation)\n",
                                cfg.method, cfg.prompt, r.iterations);
  report.note = fmt::format("wrote {}/field.safetensors, views.png, turntable.gif, {}loss.png\n", run.out.string(),
                            r.mesh_written ? "mesh.obj, mesh.ply, mesh.png, " : "");
  return report;
}

CommandReport eval3d_command(ConfigNode root, const RunRequest& run) {
  auto cfg = read_eval3d_config(root);
  root.finish();
  return {run_eval3d(cfg, run.out, run.progress, run_identity(root.resolved_toml(), cfg.base.teacher)),
          fmt::format("wrote {}/results.md, results.json, overview.png, runs/*/*/\n", run.out.string())};
}

std::string prompts_override(const std::string& text) {
  std::vector<std::string> prompts;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find(';', start);
    if (end == std::string::npos) end = text.size();
    auto item = text.substr(start, end - start);
    auto b = item.find_first_not_of(" \t"), e = item.find_last_not_of(" \t");
    if (b != std::string::npos) prompts.push_back(item.substr(b, e - b + 1));
    start = end + 1;
  }
  return "prompts=" + nlohmann::json(prompts).dump();
}

}  // namespace retort
