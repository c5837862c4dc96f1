// The [data] table every image command reads: which data set, where, at what size.
#pragma once
#include <filesystem>
#include <string>

#include "retort/core/config.h"
#include "retort/core/options.h"
#include "retort/data/idx.h"

namespace retort {

struct DataConfig {
  std::string source = "fashion-mnist";  // fashion-mnist | idx | folder | world
  std::filesystem::path dir = "/usr/share/datasets/fashion-mnist";  // fashion-mnist / folder: where
  std::filesystem::path test_dir;        // folder: a held-out folder (empty: reuse `dir`)
  std::filesystem::path train_images, train_labels, test_images, test_labels;  // idx: the four files
  std::filesystem::path path, test_path;  // world: files from `retort render-world` (test split: test_path)
  std::string labels = "prompt";         // world: prompt (shape, colour, view) | object (shape, colour)
  int64_t resolution = 0;                // > 0: images are resized to this (area average); 0 = as stored
                                         // (folder: 0 means 28)
  int64_t channels = 1;                  // folder: 1 (grey) or 3 (RGB)
  int64_t train_limit = 0;               // > 0: keep only the first N training images
};

// The [data] keys; a source's own keys are read (and known) only with that source.
const OptionTable<DataConfig>& data_option_table();
// Reads [data]; unknown keys and missing files for the chosen source are ConfigErrors.
DataConfig read_data_config(ConfigNode n);
// split "train" or "test". Throws IoError naming the file on unreadable or inconsistent data.
ImageDataset load_dataset(const DataConfig& cfg, const std::string& split);

}  // namespace retort
