// The data set files retort renders and reads back: the world (render-world) and the novel-view
// scenes (render-scenes), safetensors whose metadata must agree with their tensors.
#include "fuzz_target.h"
#include "retort/nvs/scene_dataset.h"
#include "retort/render/world_dataset.h"

RETORT_FUZZ_TARGET(world) {
  const auto path = retort::fuzz::as_file(data, size, "dataset.safetensors");
  retort::fuzz::expect_clean([&] { retort::load_world_dataset(path, "prompt"); });
  retort::fuzz::expect_clean([&] { retort::load_scene_dataset(path); });
}
