#include "retort/image/commands.h"

#include <fmt/format.h>

#include "retort/image/evaluator_train.h"
#include "retort/image/image_distill.h"
#include "retort/image/teacher_train.h"
#include "retort/run/run_folder.h"

namespace retort {

CommandReport train_teacher_command(ConfigNode root, const RunRequest& run, int64_t stop_after) {
  auto cfg = read_teacher_config(root);
  auto r = train_teacher(cfg, run.out, run.progress, root.resolved_toml(), stop_after);
  CommandReport report;
  report.result = fmt::format("trained {} steps, {}, {:.2f} s in this invocation\n", r.steps, r.loss_text(), r.seconds);
  report.note = !r.finished
                    ? fmt::format("stopped at step {} of {}; rerun to continue\n", r.steps, cfg.train.steps)
                    : fmt::format("wrote {}/teacher.safetensors, samples.png, loss.png, metrics.csv\n", run.out.string());
  return report;
}

CommandReport train_evaluator_command(ConfigNode root, const RunRequest& run) {
  auto cfg = read_evaluator_config(root);
  auto r = train_evaluator(cfg, run.out, run.progress, cfg.resolved);
  return {fmt::format("test accuracy {:.4f} ({} test images, {} steps, {:.0f} s)\n", r.test_accuracy, r.test_size,
                      r.steps, r.seconds),
          fmt::format("wrote {}/evaluator.safetensors, evaluator.json, loss.png\n", run.out.string())};
}

CommandReport distill_command(ConfigNode root, const RunRequest& run) {
  auto cfg = read_image_distill_config(root);
  root.finish();
  distill_images(cfg, run.out, run.progress, run_identity(root.resolved_toml(), cfg.teacher));
  return {"", fmt::format("wrote {}, samples.png, stage*/loss.png\n", student_file(run.out).string())};
}

}  // namespace retort
