// Tiny novel-view fixtures shared by the video-student and bench-nvs tests.
#pragma once
#include <fmt/format.h>

#include <filesystem>
#include <string>

#include "retort/nvs/scene_dataset.h"
#include "retort/nvs/video_teacher.h"

namespace retort::test {

// Trains a two-step video network (one level of width 8) on DIR/train.safetensors into DIR/NAME
// and returns its nvs-teacher.safetensors; `train_keys` adds lines to its [train] table.
inline std::filesystem::path train_tiny_nvs(const std::filesystem::path& dir, const std::string& name,
                                            const std::string& train_keys = "") {
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
{1}
[preview]
steps = 1
clips = 1
[runtime]
threads = 1
)", dir.string(), train_keys), name + ".toml");
  train_nvs_teacher(read_nvs_teacher_config(root), dir / name, false, root.resolved_toml());
  return dir / name / "nvs-teacher.safetensors";
}

// Renders DIR/train.safetensors (4 clips) and DIR/test.safetensors (`test_clips`) of `frames`
// frames at `resolution` px, trains the tiny video teacher on them and returns its file.
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
  return train_tiny_nvs(dir, "teacher");
}

}  // namespace retort::test
