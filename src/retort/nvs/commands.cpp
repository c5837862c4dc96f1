#include "retort/nvs/commands.h"

#include <fmt/format.h>

#include "retort/nvs/video_teacher.h"

namespace retort {

CommandReport train_nvs_teacher_command(ConfigNode root, const RunRequest& run, int64_t stop_after) {
  auto cfg = read_nvs_teacher_config(root);
  auto r = train_nvs_teacher(cfg, run.out, run.progress, root.resolved_toml(), stop_after);
  CommandReport report;
  report.result = fmt::format("trained {} steps, final loss {:.4f}, {:.0f} s in all invocations\n", r.steps,
                              r.final_loss, r.seconds);
  report.note = r.finished ? fmt::format("wrote {}/nvs-teacher.safetensors, samples.png, loss.png, metrics.csv\n",
                                         run.out.string())
                           : fmt::format("stopped at step {} of {}; rerun to continue\n", r.steps, cfg.train.steps);
  return report;
}

}  // namespace retort
