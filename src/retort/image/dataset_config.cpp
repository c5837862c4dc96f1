#include "retort/image/dataset_config.h"

#include <fmt/format.h>

#include <algorithm>
#include <utility>
#include <vector>

#include "retort/core/error.h"
#include "retort/data/image_folder.h"
#include "retort/render/world_dataset.h"

namespace retort {

const OptionTable<DataConfig>& data_option_table() {
  static const auto table = [] {
    using C = DataConfig;
    auto source_is = [](std::vector<std::string> sources) {
      return [sources](const C& c) { return std::find(sources.begin(), sources.end(), c.source) != sources.end(); };
    };
    OptionTable<C> t;
    t.choice("source", &C::source, {"fashion-mnist", "idx", "folder", "world"}, "where the images come from")
        .text("dir", &C::dir, "the data set's folder (folder: required, no default)")
        .when(source_is({"fashion-mnist", "folder"}), "fashion-mnist, folder");
    for (auto [key, ref] : {std::pair{"train_images", &C::train_images}, {"train_labels", &C::train_labels},
                            {"test_images", &C::test_images}, {"test_labels", &C::test_labels}})
      t.text(key, ref, "an IDX file (required)").when(source_is({"idx"}), "idx");
    t.text("path", &C::path, "a file from retort render-world (required)")
        .when(source_is({"world"}), "world")
        .text("test_path", &C::test_path, "its test split (commands that score need it)")
        .when(source_is({"world"}), "world")
        .choice("labels", &C::labels, {"prompt", "object"},
                "prompt: 192 classes (shape, colour, view); object: 48 (shape, colour)")
        .when(source_is({"world"}), "world")
        .text("test_dir", &C::test_dir, "a held-out folder (empty: reuse `dir`)")
        .when(source_is({"folder"}), "folder")
        .integer("channels", &C::channels, 1, 3, "1 (grey) or 3 (RGB)")
        .when(source_is({"folder"}), "folder")
        .integer("resolution", &C::resolution, 0, 4096,
                 "> 0: images are resized to this (area average); 0 = as stored (folder: 28)")
        .integer("train_limit", &C::train_limit, 0, 1'000'000'000, "> 0: keep only the first N training images")
        .check([](ConfigNode& n, const C& c) {
          if (c.source == "idx")
            for (auto [key, path] : {std::pair{"train_images", &c.train_images}, {"train_labels", &c.train_labels},
                                     {"test_images", &c.test_images}, {"test_labels", &c.test_labels}})
              if (path->empty()) n.fail(key, "required when source = \"idx\"");
          if (c.source == "world" && c.path.empty())
            n.fail("path", "required when source = \"world\" (a file from retort render-world)");
          if (c.source == "folder" && c.dir.empty()) n.fail("dir", "required when source = \"folder\"");
          if (c.source == "folder" && c.channels == 2) n.fail("channels", "must be 1 (grey) or 3 (RGB)");
          if (c.resolution > 0 && c.resolution < 4)
            n.fail("resolution", fmt::format("{} is below 4 pixels", c.resolution));
        });
    return t;
  }();
  return table;
}

DataConfig read_data_config(ConfigNode n) {
  DataConfig c;
  data_option_table().read_key(n, c, "source");
  if (c.source == "folder") c.dir.clear();  // a folder has no default place
  data_option_table().read(n, c);
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
