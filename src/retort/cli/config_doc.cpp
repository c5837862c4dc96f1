#include "retort/cli/config_doc.h"

#include <fmt/format.h>
#include <fmt/ranges.h>  // fmt::join ({fmt} 11 moved it here)

#include "retort/bench/distill_bench.h"
#include "retort/bench/gmm_config.h"
#include "retort/core/error.h"
#include "retort/core/runtime_config.h"
#include "retort/field/field_spec.h"
#include "retort/image/dataset_config.h"
#include "retort/image/evaluator_train.h"
#include "retort/nvs/scene_dataset.h"
#include "retort/nvs/nvs_bench.h"
#include "retort/nvs/video_distill.h"
#include "retort/nvs/video_teacher.h"
#include "retort/text3d/generate3d.h"
#include "retort/image/image_distill.h"
#include "retort/image/teacher_train.h"
#include "retort/models/script_contract.h"
#include "retort/render/world_dataset.h"
#include "retort/text3d/eval3d.h"
#include "retort/text2d/bench2d.h"
#include "retort/text2d/generate2d.h"

namespace retort {
namespace {

std::string section(const std::string& title, const std::string& body) { return fmt::format("{}\n\n{}\n", title, body); }

// The contract of a TorchScript teacher, for every command whose `teacher` may be one.
std::string torchscript_section() {
  return section(fmt::format("`[torchscript]` (optional: how to call a TorchScript teacher, in place of its "
                             "retort.json; every key required but `{}`, and `channels`, `resolution` with `dim`)",
                             fmt::join(optional_contract_keys(), "`, `")),
                 script_contract_table().markdown());
}

std::string runtime_section() { return section("`[runtime]`", runtime_option_table().markdown()); }

std::string data_section() { return section("`[data]`", data_option_table().markdown()); }

std::string distill_sections() {
  return section("Top level", student_top_option_table().markdown()) +
         torchscript_section() +
         section("`[distill]`", student_option_table().markdown()) +
         section("Presets of `[distill] method`", method_presets_markdown(StudentConfig{}));
}

std::string distill_doc() { return distill_sections() + data_section() + runtime_section(); }

std::string teacher_doc() {
  std::string doc = data_section();
  for (const auto& [name, table] : teacher_option_tables()) doc += section(fmt::format("`[{}]`", name), table->markdown());
  return doc + runtime_section();
}

std::string evaluator_doc() {
  return data_section() + section("`[evaluator]`", evaluator_option_table().markdown()) + runtime_section();
}

std::string bench_distill_doc() {
  return section("Top level", distill_bench_option_table().markdown()) +
         section("`[eval]`", distill_bench_eval_option_table().markdown()) +
         "Every table of `retort config distill` too: `[distill]` (also each `[[run]]`, with an optional `name`), "
         "`[data]`, `[runtime]`.\n";
}

std::string render_world_doc() { return section("`[world]`", world_option_table().markdown()); }

std::string generate3d_sections() {
  const auto& t = generate3d_option_table();
  std::string presets = "| method | fake | preset (applied before the file's keys) |\n|---|---|---|\n";
  for (const auto& m : generate3d_method_names())
    for (const std::string fake : {"embedding", "copy"}) {
      Generate3dConfig base;
      base.method = m;
      base.fake = fake;
      auto c = base;
      apply_generate3d_presets(c);
      const auto d = t.differences(base, c);
      presets += fmt::format("| `{}` | `{}` | {} |\n", m, fake, d.empty() ? "the defaults" : d);
    }
  return section("Top level", generate3d_top_option_table().markdown()) + torchscript_section() +
         section("`[generate3d]`", t.markdown()) + section("Presets of `method` and `fake`", presets) +
         section("`[output]`", generate3d_output_option_table().markdown()) +
         section("`[field]`", field_option_table().markdown());
}

std::string generate3d_doc() { return generate3d_sections() + runtime_section(); }

std::string eval3d_doc() {
  return section("Top level", eval3d_option_table().markdown()) +
         section("`[eval3d]`", eval3d_table_option_table().markdown()) +
         "Every table of `retort config generate3d` too: `[generate3d]`, `[output]`, `[field]`, `[runtime]`.\n";
}

std::string generate2d_sections() {
  const auto& t = generate2d_option_table();
  std::string presets = "| method | fake | preset (applied before the file's keys) |\n|---|---|---|\n";
  for (const auto& m : generate2d_method_names())
    for (const auto& fake : generate2d_fake_names()) {
      Generate2dConfig base;
      base.method = m;
      base.fake = fake;
      auto c = base;
      apply_generate2d_presets(c);
      const auto d = t.differences(base, c);
      presets += fmt::format("| `{}` | `{}` | {} |\n", m, fake, d.empty() ? "the defaults" : d);
    }
  return section("Top level", generate2d_top_option_table().markdown()) +
         section("`[generate2d]`", t.markdown()) + section("Presets of `method` and `fake`", presets) +
         section("`[data]` (optional: real images of the prompts' classes, for `asd_real` and bench-2d)",
                 data_option_table().markdown());
}

std::string bench2d_doc() {
  return section("Top level", bench2d_option_table().markdown()) +
         section("`[eval]`", bench2d_eval_option_table().markdown()) +
         "Every table of `retort config generate2d` too: `[generate2d]` (also each `[[run]]`, with an optional "
         "`name`), `[data]` (required), `[runtime]`.\n";
}

std::string gmm_doc() {
  ScheduleOptions linear;  // bench-gmm's schedule default
  return section("Top level", gmm_top_option_table().markdown()) +
         torchscript_section() +
         section("`[target]`", gmm_target_option_table().markdown()) +
         section("`[[target.mode]]` (preset = \"modes\"; one per component)", gmm_mode_option_table().markdown()) +
         section("`[schedule]`", schedule_option_table().markdown(linear)) +
         section("`[eval]`", gmm_eval_option_table().markdown()) +
         section("`[ratio]` (the learned density ratio against the exact one; README)", ratio_check_option_table().markdown()) +
         section("`[defaults]` and each `[[run]]`", gmm_run_option_table().markdown()) + runtime_section();
}

}  // namespace

std::vector<std::string> documented_commands() {
  return {"bench-gmm", "train-teacher", "train-evaluator", "distill", "bench-distill", "render-world", "generate3d",
          "eval3d", "generate2d", "bench-2d", "render-scenes", "train-nvs-teacher", "distill-nvs", "bench-nvs"};
}

std::string config_markdown(const std::string& command) {
  std::string doc;
  if (command == "bench-gmm") doc = gmm_doc();
  if (command == "distill") doc = distill_doc();
  if (command == "generate3d") doc = generate3d_doc();
  if (command == "train-teacher") doc = teacher_doc();
  if (command == "train-evaluator") doc = evaluator_doc();
  if (command == "bench-distill") doc = bench_distill_doc();
  if (command == "render-world") doc = render_world_doc();
  if (command == "eval3d") doc = eval3d_doc();
  if (command == "generate2d") doc = generate2d_sections() + runtime_section();
  if (command == "bench-2d") doc = bench2d_doc();
  if (command == "render-scenes") doc = section("`[scenes]`", scene_dataset_option_table().markdown());
  if (command == "train-nvs-teacher") doc = nvs_teacher_config_markdown() + runtime_section();
  if (command == "distill-nvs") doc = nvs_distill_config_markdown() + runtime_section();
  if (command == "bench-nvs")
    doc = section("Top level", nvs_bench_option_table().markdown()) +
          section("`[[model]]` (one per row)", nvs_bench_model_option_table().markdown()) +
          section("`[reconstruction]`", reconstruction_option_table().markdown()) + runtime_section();
  while (doc.size() > 1 && doc[doc.size() - 2] == '\n') doc.pop_back();  // one final newline
  if (!doc.empty()) return doc;
  throw ConfigError(fmt::format("config: '{}' has no option tables yet; documented: {}", command,
                                fmt::join(documented_commands(), ", ")));
}

}  // namespace retort
