// A weights file's model description: the JSON that rebuilds the network before its tensors are
// loaded. The first byte picks the loader (UNet "retort.unet", few-step student "retort.student"
// beside a valid UNet description, classifier "retort.classifier"); the rest is the JSON. The file
// around it is a valid safetensors with no tensors, so every input reaches the JSON.
#include "fuzz_target.h"
#include "retort/generators/few_step_student.h"
#include "retort/io/safetensors.h"
#include "retort/models/classifier.h"
#include "retort/models/unet.h"

namespace {

// A small UNet's own description, for the student's metadata to sit beside.
const std::string& valid_unet_json() {
  static const std::string json = [] {
    retort::UNetOptions o;
    o.resolution = 8;
    o.widths = {8, 8};
    o.time_dim = 16;
    o.groups = 4;
    o.heads = 0;
    retort::UNetDenoiser m(o, retort::Schedule(retort::ScheduleOptions{}), retort::Prediction::Eps);
    const auto path = retort::fuzz::as_file(nullptr, 0, "unet.safetensors");
    retort::save_unet(path, m);
    std::map<std::string, std::string> meta;
    retort::load_safetensors(path, &meta);
    return meta.at("retort.unet");
  }();
  return json;
}

}  // namespace

RETORT_FUZZ_TARGET(model_metadata) {
  if (size == 0) return;
  const std::string json(retort::fuzz::as_text(data + 1, size - 1));
  const auto path = retort::fuzz::as_file(nullptr, 0, "model.safetensors");
  // Text that is not UTF-8 cannot be a safetensors header's metadata: save_safetensors refuses it
  // (its IoError is a clean end too).
  retort::fuzz::expect_clean([&] {
    switch (data[0] % 3) {
      case 0:
        retort::save_safetensors(path, {}, {{"retort.unet", json}});
        retort::load_unet(path);
        break;
      case 1:
        retort::save_safetensors(path, {}, {{"retort.unet", valid_unet_json()}, {"retort.student", json}});
        retort::load_student(path);
        break;
      default:
        retort::save_safetensors(path, {}, {{"retort.classifier", json}});
        retort::load_classifier(path);
    }
  });
}
