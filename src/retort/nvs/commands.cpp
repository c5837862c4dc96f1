#include "retort/nvs/commands.h"

#include <fmt/format.h>

#include "retort/nvs/nvs_bench.h"
#include "retort/nvs/video_distill.h"
#include "retort/nvs/video_teacher.h"
#include "retort/run/run_folder.h"

namespace retort {

CommandReport train_nvs_teacher_command(ConfigNode root, const RunRequest& run, int64_t stop_after) {
  auto cfg = read_nvs_teacher_config(root);
  auto r = train_nvs_teacher(cfg, run.out, run.progress, root.resolved_toml(), stop_after);
  CommandReport report;
  report.result = fmt::format("trained {} steps, {}, {:.0f} s in all invocations\n", r.steps, r.loss_text(), r.seconds);
  report.note = r.finished ? fmt::format("wrote {}/nvs-teacher.safetensors, samples.png, loss.png, metrics.csv\n",
                                         run.out.string())
                           : fmt::format("stopped at step {} of {}; rerun to continue\n", r.steps, cfg.train.steps);
  return report;
}

CommandReport distill_nvs_command(ConfigNode root, const RunRequest& run) {
  auto cfg = read_nvs_distill_config(root);
  double seconds = 0;
  distill_nvs(cfg, run.out, run.progress, run_identity(root.resolved_toml(), cfg.teacher), &seconds);
  return {fmt::format("trained {} ({} steps of the student), {:.0f} s of training in all invocations\n", cfg.method,
                      cfg.student_steps, seconds),
          fmt::format("wrote {}/student.safetensors, samples.png, stage*/loss.png\n", run.out.string())};
}

CommandReport bench_nvs_command(ConfigNode root, const RunRequest& run) {
  auto cfg = read_nvs_bench_config(root);
  auto results = run_nvs_bench(cfg, run.out, run.progress, root.resolved_toml());
  return {nvs_bench_markdown(results), fmt::format("wrote {}/results.md, results.json, strip.png\n", run.out.string())};
}

}  // namespace retort
