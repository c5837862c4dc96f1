#include "retort/image/dataset_config.h"

#include <fmt/format.h>

#include "retort/core/error.h"
#include "retort/data/image_folder.h"
#include "retort/render/world_dataset.h"

namespace retort {

DataConfig read_data_config(ConfigNode n) {
  DataConfig c;
  c.source = n.choice("source", c.source, {"fashion-mnist", "idx", "folder", "world"});
  if (c.source == "fashion-mnist") {
    c.dir = n.string("dir", c.dir.string());
  } else if (c.source == "idx") {
    for (auto [key, path] : {std::pair{"train_images", &c.train_images}, {"train_labels", &c.train_labels},
                             {"test_images", &c.test_images}, {"test_labels", &c.test_labels}}) {
      *path = n.string(key, "");
      if (path->empty()) n.fail(key, "required when source = \"idx\"");
    }
  } else if (c.source == "world") {
    c.path = n.string("path", "");
    if (c.path.empty()) n.fail("path", "required when source = \"world\" (a file from retort render-world)");
    c.test_path = n.string("test_path", "");
    c.labels = n.choice("labels", c.labels, {"prompt", "object"});
  } else {
    c.dir = n.string("dir", "");
    if (c.dir.empty()) n.fail("dir", "required when source = \"folder\"");
    c.test_dir = n.string("test_dir", "");
    c.channels = n.integer("channels", c.channels, 1, 3);
    if (c.channels == 2) n.fail("channels", "must be 1 (grey) or 3 (RGB)");
  }
  c.resolution = n.integer("resolution", 0, 0, 4096);
  if (c.resolution > 0 && c.resolution < 4) n.fail("resolution", fmt::format("{} is below 4 pixels", c.resolution));
  c.train_limit = n.integer("train_limit", 0, 0, 1'000'000'000);
  return c;
}

ImageDataset load_dataset(const DataConfig& c, const std::string& split) {
  if (split != "train" && split != "test") throw Error(fmt::format("data split '{}': expected train or test", split));
  ImageDataset d;
  if (c.source == "fashion-mnist") d = load_fashion_mnist(split, c.dir);
  else if (c.source == "idx")
    d = split == "train" ? load_idx_pair(c.train_images, c.train_labels) : load_idx_pair(c.test_images, c.test_labels);
  else if (c.source == "world") {
    if (split == "test" && c.test_path.empty())
      throw ConfigError("data.test_path: this command needs a test split; render one with retort render-world");
    d = load_world_dataset(split == "test" ? c.test_path : c.path, c.labels).data;
  } else
    d = load_image_folder(split == "test" && !c.test_dir.empty() ? c.test_dir : c.dir,
                          c.resolution > 0 ? c.resolution : 28, c.channels);
  if (split == "train" && c.train_limit > 0 && c.train_limit < d.images.size(0)) {
    d.images = d.images.narrow(0, 0, c.train_limit).contiguous();
    if (d.labels.defined()) d.labels = d.labels.narrow(0, 0, c.train_limit).contiguous();
  }
  if (c.resolution > 0 && (d.images.size(2) != c.resolution || d.images.size(3) != c.resolution)) {
    namespace F = torch::nn::functional;
    // Area averaging is the anti-aliased downsample (28 -> 16 keeps strokes instead of dropping rows).
    d.images = F::interpolate(d.images, F::InterpolateFuncOptions()
                                            .size(std::vector<int64_t>{c.resolution, c.resolution})
                                            .mode(torch::kArea))
                   .contiguous();
  }
  return d;
}

}  // namespace retort
