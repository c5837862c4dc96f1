// Every config-driven command's reader: the input's first byte picks the command, the rest is the
// TOML document, read as `retort CMD --config FILE` reads it: the parser (toml++), the command's
// option tables, finish() (unknown keys). One reader per input keeps executions fast, and lets the
// fuzzer learn each reader's keys.
#include "fuzz_target.h"
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
#include "retort/text3d/eval3d.h"
#include "retort/text3d/generate3d.h"

using retort::ConfigNode;

namespace {

using Reader = void (*)(ConfigNode&);
const Reader kReaders[] = {
    [](ConfigNode& r) { retort::parse_gmm_bench_config(r); },
    [](ConfigNode& r) { retort::read_teacher_config(r); },
    [](ConfigNode& r) { retort::read_evaluator_config(r); },
    [](ConfigNode& r) { retort::read_image_distill_config(r); },
    [](ConfigNode& r) { retort::read_distill_bench_config(r); },
    [](ConfigNode& r) { retort::read_generate3d_config(r); },
    [](ConfigNode& r) { retort::read_eval3d_config(r); },
    [](ConfigNode& r) { retort::read_nvs_teacher_config(r); },
    [](ConfigNode& r) { retort::read_nvs_distill_config(r); },
    [](ConfigNode& r) { retort::read_nvs_bench_config(r); },
    [](ConfigNode& r) { retort::read_world_options(r.table("world")); },
    [](ConfigNode& r) { retort::read_scene_dataset_options(r.table("scenes")); },
};
constexpr size_t kNumReaders = sizeof(kReaders) / sizeof(kReaders[0]);

}  // namespace

RETORT_FUZZ_TARGET(config) {
  if (size == 0) return;
  const std::string text(retort::fuzz::as_text(data + 1, size - 1));
  retort::fuzz::expect_clean([&] {
    auto root = ConfigNode::from_string(text, "fuzz.toml");
    kReaders[data[0] % kNumReaders](root);
    root.finish();
  });
}
