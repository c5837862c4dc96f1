// Tiny novel-view fixtures shared by the video-student and bench-nvs tests.
#pragma once
#include <fmt/format.h>

#include <filesystem>

#include "retort/nvs/scene_dataset.h"
#include "retort/nvs/video_teacher.h"

namespace retort::test {

// Renders DIR/train.safetensors (4 clips) and DIR/test.safetensors (`test_clips`) of `frames`
// frames at `resolution` px, trains a two-step video teacher on them (one level of width 8) and
// returns its nvs-teacher.safetensors.
inline std::filesystem::path tiny_nvs_teacher(const std::filesystem::path& dir, int64_t resolution, int64_t frames,
                                              int64_t test_clips) {
  SceneDatasetOptions o;
  o.train = 4;
  o.test = test_clips;
  o.resolution = resolution;
  o.frames = frames;
  o.supersample = false;
  render_scene_dataset(o, "train", dir / "train.safetensors", false);
  render_scene_dataset(o, "test", dir / "test.safetensors", false);
  auto root = ConfigNode::from_string(fmt::format(R"([data]
train = "{0}/train.safetensors"
[model]
widths = [8]
groups = 4
time_dim = 8
heads = 1
temporal_heads = 1
[train]
steps = 2
batch = 2
warmup = 1
log_every = 1
checkpoint_every = 2
[preview]
steps = 1
clips = 1
[runtime]
threads = 1
)", dir.string()), "t.toml");
  train_nvs_teacher(read_nvs_teacher_config(root), dir / "teacher", false, root.resolved_toml());
  return dir / "teacher" / "nvs-teacher.safetensors";
}

}  // namespace retort::test
