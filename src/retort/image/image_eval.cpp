#include "retort/image/image_eval.h"

#include <fmt/format.h>

#include "retort/core/config.h"
#include "retort/core/error.h"
#include "retort/core/runtime_config.h"
#include "retort/image/dataset_config.h"

namespace retort {

ImageEval run_image_eval(const ImageEvalRequest& r) {
  auto root = ConfigNode::from_file(r.config);
  auto data_node = root.table("data");
  auto data = read_data_config(data_node);
  data_node.finish();
  RuntimeOptions runtime;
  if (root.has("runtime")) {
    auto rt = root.table("runtime");
    runtime = read_runtime_options(rt);
    rt.finish();
  }
  apply_runtime(runtime);
  // The images first: the file most likely to be wrong gets its message before any slow work.
  torch::Tensor images, labels;
  const std::string images_name = r.images.string();
  if (images_name == "data:train" || images_name == "data:test") {
    auto d = load_dataset(data, images_name.substr(5));
    images = d.images, labels = d.labels;
  } else {
    load_image_file(r.images, &images, &labels);
  }
  auto model = load_classifier(r.evaluator);
  model->to(parse_device(runtime.device));
  const auto& o = model->options();
  if (images.size(1) != o.channels || images.size(2) != o.resolution || images.size(3) != o.resolution)
    throw IoError(fmt::format("{}: images are {} per sample but the evaluator {} expects [{}, {}, {}]", images_name,
                              c10::str(images.sizes().slice(1)), r.evaluator.string(), o.channels, o.resolution,
                              o.resolution));
  if (r.limit > 0 && r.limit < images.size(0)) {
    images = images.narrow(0, 0, r.limit);
    if (labels.defined()) labels = labels.narrow(0, 0, r.limit);
  }
  auto reference = load_dataset(data, "test").images;
  if (reference.sizes().slice(1) != images.sizes().slice(1))
    throw IoError(fmt::format("{}: the test images are {} per sample, the scored images {}", r.config.string(),
                              c10::str(reference.sizes().slice(1)), c10::str(images.sizes().slice(1))));
  return evaluate_images(model, images, labels, classifier_features(model, reference), r.k);
}

}  // namespace retort
