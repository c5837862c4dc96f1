// How retort calls a user's TorchScript diffusion model (models/torchscript_model.h): the keys of
// the archive's "retort.json", or of a config's [torchscript] table, which takes its place.
#pragma once
#include <string>
#include <vector>

#include "retort/core/config.h"
#include "retort/core/options.h"
#include "retort/diffusion/parameterization.h"
#include "retort/diffusion/schedule.h"

namespace retort {

// How to call a TorchScript diffusion model ("retort.json").
struct ScriptContract {
  Prediction prediction = Prediction::Eps;
  std::string time = "discrete";  // "discrete": t is the int64 step 0..T-1; "continuous": float t in [0, 1]
  ScheduleOptions schedule;
  int64_t channels = 1;
  int64_t resolution = 0;
  int64_t dim = 0;             // > 0: a model of points x [B, dim] (bench-gmm) instead of images
  int64_t frames = 0;          // > 0: a video model over x [B, frames, channels, H, W]
  int64_t concat_channels = 0; // > 0: cond is float render channels [B, (frames,) concat_channels, H, W]
                               // (the novel-view teacher's point-cloud renders; zeros = no condition)
  int64_t num_classes = 0;     // cond is an int64 class label [B]; 0: unconditional
  int64_t null_class = -1;     // the label of "no condition" (CFG); -1: num_classes
  std::string method = "forward";
  std::string features;        // a method (x_t, t, cond) -> List[Tensor], encoder levels with the
                               // bottleneck last, for the GAN heads; "": none (GAN methods refused)
};
// The keys of retort.json; all are required but optional_contract_keys(), and channels and
// resolution when dim is given.
const OptionTable<ScriptContract>& script_contract_table();
std::vector<std::string> optional_contract_keys();

// retort.json's text as a contract; IoError "no 'key'" / "key = value ..." (the caller names the file).
ScriptContract parse_script_contract(const std::string& json_text);
// A config's [torchscript] table: the same keys are required (a missing
// prediction or schedule is named, ConfigError), ranges and choices checked like any key's.
ScriptContract read_script_contract(ConfigNode& n);

}  // namespace retort
