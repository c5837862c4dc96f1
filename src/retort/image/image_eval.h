// `retort eval`: score an image file against a data set's test split (eval/image_metrics.h).
#pragma once
#include <cstdint>
#include <filesystem>

#include "retort/eval/image_metrics.h"

namespace retort {

// `retort eval`: the evaluator file scores `images` against the whole test split of the [data] table
// of `config` (its [runtime] table is honoured, other tables are ignored). `images` is a safetensors
// file (see load_image_file), or "data:train" / "data:test" for that split of the data itself (the
// real-data baseline). limit > 0 keeps the first `limit` images.
struct ImageEvalRequest {
  std::filesystem::path config, evaluator, images;
  int64_t k = 3, limit = 0;
};
ImageEval run_image_eval(const ImageEvalRequest& request);

}  // namespace retort
