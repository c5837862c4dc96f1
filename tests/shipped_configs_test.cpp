// Every config shipped in configs/ is read without error by the command it is written for: a key
// renamed or a range tightened in code cannot leave a shipped config behind. A new config must be
// added to the table below.
#include <gtest/gtest.h>

#include <filesystem>
#include <functional>
#include <map>
#include <string>

#include "retort/bench/distill_bench.h"
#include "retort/bench/gmm_config.h"
#include "retort/core/config.h"
#include "retort/image/evaluator_train.h"
#include "retort/image/image_distill.h"
#include "retort/image/teacher_train.h"
#include "retort/nvs/nvs_bench.h"
#include "retort/nvs/scene_dataset.h"
#include "retort/nvs/video_distill.h"
#include "retort/nvs/video_teacher.h"
#include "retort/render/world_dataset.h"
#include "retort/text2d/bench2d.h"
#include "retort/text2d/generate2d.h"
#include "retort/text3d/eval3d.h"
#include "retort/text3d/generate3d.h"

namespace retort {
namespace {
namespace fs = std::filesystem;

using Reader = std::function<void(ConfigNode&)>;

const std::map<std::string, Reader>& readers() {
  static const std::map<std::string, Reader> r{
      {"bench-distill", [](ConfigNode& n) { read_distill_bench_config(n); }},
      {"distill", [](ConfigNode& n) { read_image_distill_config(n); }},
      {"train-teacher", [](ConfigNode& n) { read_teacher_config(n); }},
      {"train-evaluator", [](ConfigNode& n) { read_evaluator_config(n); }},
      {"render-world", [](ConfigNode& n) { read_world_options(n.table("world")); }},
      {"render-scenes", [](ConfigNode& n) { read_scene_dataset_options(n.table("scenes")); }},
      {"train-nvs-teacher", [](ConfigNode& n) { read_nvs_teacher_config(n); }},
      {"distill-nvs", [](ConfigNode& n) { read_nvs_distill_config(n); }},
      {"bench-nvs", [](ConfigNode& n) { read_nvs_bench_config(n); }},
      {"generate3d", [](ConfigNode& n) { read_generate3d_config(n); }},
      {"eval3d", [](ConfigNode& n) { read_eval3d_config(n); }},
      {"generate2d", [](ConfigNode& n) { read_generate2d_config(n); }},
      {"bench-2d", [](ConfigNode& n) { read_bench2d_config(n); }},
  };
  return r;
}

// configs/FILE -> the commands that read it.
const std::map<std::string, std::vector<std::string>>& shipped() {
  static const std::map<std::string, std::vector<std::string>> s{
      {"bench-2d.toml", {"bench-2d"}},
      {"fmnist-bench-regression.toml", {"bench-distill"}},
      {"fmnist-bench-short.toml", {"bench-distill"}},
      {"fmnist-bench.toml", {"bench-distill"}},
      {"fmnist-distill.toml", {"distill"}},
      {"fmnist-dmd2-decay.toml", {"distill"}},
      {"fmnist-dmd2-disc.toml", {"distill"}},
      {"fmnist-dmd2-ema.toml", {"distill"}},
      {"fmnist-dmd2-gan.toml", {"distill"}},
      {"fmnist-dmd2-long.toml", {"distill"}},
      {"fmnist-dmd2-noreg.toml", {"distill"}},
      {"fmnist-dmd2-reg.toml", {"distill"}},
      {"fmnist-dmd2-warm.toml", {"distill"}},
      {"fmnist-evaluator.toml", {"train-evaluator"}},
      {"fmnist-teacher.toml", {"train-teacher"}},
      {"gmm-highdim.toml", {"bench-gmm"}},
      {"gmm-highdim-fit.toml", {"bench-gmm"}},
      {"gmm-light-mode.toml", {"bench-gmm"}},
      {"gmm-light-mode-fit.toml", {"bench-gmm"}},
      {"gmm-ring8.toml", {"bench-gmm"}},
      {"gmm-ring8-fit.toml", {"bench-gmm"}},
      {"gmm-separated.toml", {"bench-gmm"}},
      {"gmm-separated-fit.toml", {"bench-gmm"}},
      {"nvs-bench-gan-probes.toml", {"bench-nvs"}},
      {"nvs-bench-all.toml", {"bench-nvs"}},
      {"nvs-bench-short.toml", {"bench-nvs"}},
      {"nvs-bench.toml", {"bench-nvs"}},
      {"nvs-distill.toml", {"distill-nvs"}},
      {"nvs-regressor.toml", {"train-nvs-teacher"}},
      {"nvs-teacher.toml", {"train-nvs-teacher"}},
      {"scenes.toml", {"render-scenes"}},
      {"text2d-fmnist.toml", {"generate2d"}},
      {"text2d-world.toml", {"generate2d"}},
      {"text3d.toml", {"generate3d", "eval3d"}},
      {"world-evaluator.toml", {"train-evaluator"}},
      {"world-teacher.toml", {"train-teacher"}},
      {"world-test.toml", {"render-world"}},
      {"world.toml", {"render-world"}},
  };
  return s;
}

// Runs from the repository root, where the configs' relative paths (weights/, runs/) point.
struct InSourceDir {
  fs::path before = fs::current_path();
  InSourceDir() { fs::current_path(RETORT_SOURCE_DIR); }
  ~InSourceDir() { fs::current_path(before); }
};

TEST(ShippedConfigs, EachIsReadByItsCommand) {
  InSourceDir here;
  const fs::path dir = "configs";
  int checked = 0;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.path().extension() != ".toml") continue;
    const auto name = entry.path().filename().string();
    auto it = shipped().find(name);
    ASSERT_NE(it, shipped().end()) << "configs/" << name << " is not in tests/shipped_configs_test.cpp: add it";
    for (const auto& cmd : it->second) {
      SCOPED_TRACE("configs/" + name + " read by " + cmd);
      try {
        if (cmd == "bench-gmm") {
          load_gmm_bench_config(entry.path());
        } else {
          auto root = ConfigNode::from_file(entry.path());
          readers().at(cmd)(root);
          root.finish();
        }
      } catch (const std::exception& e) {
        // What scripts/nvs-results.sh trains into runs/ is absent from a fresh clone.
        const std::string what = e.what();
        if (what.find(": runs/") == std::string::npos || what.find("no such file") == std::string::npos)
          ADD_FAILURE() << what;
      }
      ++checked;
    }
  }
  EXPECT_GE(checked, int(shipped().size()));
}

}  // namespace
}  // namespace retort
