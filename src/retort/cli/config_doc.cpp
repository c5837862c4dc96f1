#include "retort/cli/config_doc.h"

#include <fmt/format.h>

#include "retort/bench/gmm_config.h"
#include "retort/core/error.h"
#include "retort/core/runtime_config.h"
#include "retort/nvs/scene_dataset.h"
#include "retort/nvs/video_teacher.h"
#include "retort/text3d/generate3d.h"
#include "retort/image/image_distill.h"

namespace retort {
namespace {

std::string section(const std::string& title, const std::string& body) { return fmt::format("{}\n\n{}\n", title, body); }

std::string runtime_section() { return section("`[runtime]`", runtime_option_table().markdown()); }

std::string distill_doc() {
  const auto& t = image_distill_option_table();
  std::string presets = "| method | preset (applied before the file's keys) |\n|---|---|\n";
  for (const auto& m : distill_method_names()) {
    ImageDistillConfig base;
    base.method = m;
    auto c = base;
    apply_method_preset(c);
    const auto d = t.differences(base, c);
    presets += fmt::format("| `{}` | {} |\n", m, d.empty() ? "the defaults" : d);
  }
  return section("`[distill]`", t.markdown()) + section("Presets of `[distill] method`", presets) +
         runtime_section();
}

std::string generate3d_doc() {
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
  return section("`[generate3d]`", t.markdown()) + section("Presets of `method` and `fake`", presets) +
         section("`[output]`", generate3d_output_option_table().markdown()) + runtime_section();
}

std::string gmm_doc() {
  return section("`[defaults]` and each `[[run]]`", gmm_run_option_table().markdown()) + runtime_section();
}

}  // namespace

std::vector<std::string> documented_commands() { return {"bench-gmm", "distill", "generate3d", "render-scenes", "train-nvs-teacher"}; }

std::string config_markdown(const std::string& command) {
  std::string doc;
  if (command == "bench-gmm") doc = gmm_doc();
  if (command == "distill") doc = distill_doc();
  if (command == "generate3d") doc = generate3d_doc();
  if (command == "render-scenes") doc = section("`[scenes]`", scene_dataset_option_table().markdown());
  if (command == "train-nvs-teacher") doc = nvs_teacher_config_markdown() + runtime_section();
  while (doc.size() > 1 && doc[doc.size() - 2] == '\n') doc.pop_back();  // one final newline
  if (!doc.empty()) return doc;
  throw ConfigError(fmt::format("config: '{}' has no option tables yet; documented: {}", command,
                                fmt::join(documented_commands(), ", ")));
}

}  // namespace retort
