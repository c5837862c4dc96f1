// `retort generate3d`: text-to-3D by score distillation (Algorithm 1 of seed 002). A radiance field
// is rendered from random cameras and updated with the SDS, VSD or ASD generator gradient from a
// prompt-conditioned UNet teacher trained on retort's procedural world; VSD and ASD also train a
// fake score phi online (the core's DistillLoop and objectives, unchanged).
#pragma once
#include <filesystem>
#include <optional>
#include <string>

#include "retort/core/config.h"
#include "retort/core/runtime.h"
#include "retort/distill/objective.h"
#include "retort/field/field_spec.h"
#include "retort/models/script_contract.h"
#include "retort/models/unet.h"
#include "retort/text3d/field_generator.h"
#include "retort/train/distill_loop.h"

namespace retort {

struct Generate3dOutputs {
  int64_t views = 8;             // views.png: a ring of views
  int64_t resolution = 64;       // of views.png and the turntable
  int64_t gif_frames = 36;
  int64_t mesh_resolution = 96;  // marching-cubes grid per axis
  double mesh_threshold = 10;    // density isosurface
};

// generate3d's loop defaults (ASD / threestudio: Adam 1e-2 with betas 0.9 / 0.99 on the field).
inline DistillLoopOptions generate3d_loop_defaults() {
  DistillLoopOptions l;
  l.steps = 600;
  l.batch = 1;
  l.gen_optim = OptimOptions{1e-2, 0.9, 0.99, 0.0, 0.0};
  l.critic_optim = OptimOptions{1e-3, 0.9, 0.999, 0.0, 10.0};
  l.time = TimeRange{0.02, 0.98, Anneal::Step, 0.5, 0.2};
  l.log_every = 10;
  l.checkpoint_every = 100;
  return l;
}
// ASD's 3-D discriminator weight (official code): gamma -0.75.
inline ObjectiveOptions generate3d_objective_defaults() {
  ObjectiveOptions o;
  o.cfg_scale = 7.5;
  o.gamma = -0.75;
  return o;
}

struct Generate3dConfig {
  std::filesystem::path teacher = "weights/world-teacher.safetensors";  // prompt-conditioned UNet
  std::optional<ScriptContract> teacher_contract;  // [torchscript]: how to call a TorchScript teacher
  std::string prompt = "a red torus";
  std::string method = "asd";     // sds | vsd | asd
  std::string fake = "embedding";  // vsd / asd phi: embedding (textual inversion, one per view) |
                                   // copy (camera-conditioned full copy of the teacher) |
                                   // lora (camera-conditioned LoRA adapters on the teacher, ASD's code)
  UNetLora lora;
  FieldSpec field;
  FieldGeneratorOptions render;
  DistillLoopOptions loop = generate3d_loop_defaults();  // batch = views per iteration
  ObjectiveOptions objective = generate3d_objective_defaults();  // cfg_scale = lambda, gamma, weighting
  Generate3dOutputs outputs;
  uint64_t seed = 0;
  RuntimeOptions runtime;
};

std::vector<std::string> generate3d_method_names();  // sds, vsd, asd
// The [generate3d] and [output] keys. The presets (apply_generate3d_presets: lambda 100 for SDS,
// 7.5 for VSD and ASD; critic_lr 1e-4 for fake = "copy", else 1e-3) are applied after `method` and
// `fake` are read and before the other keys.
const OptionTable<Generate3dConfig>& generate3d_option_table();
// The top-level keys: `teacher`, `prompt`.
const OptionTable<Generate3dConfig>& generate3d_top_option_table();
const OptionTable<Generate3dOutputs>& generate3d_output_option_table();
void apply_generate3d_presets(Generate3dConfig& c);
// Reads `teacher`, `prompt`, [generate3d], [field], [output], [runtime].
Generate3dConfig read_generate3d_config(ConfigNode& root);

struct Generate3dResult {
  double seconds_per_iteration = 0;  // of this invocation's training (0 when it only resumed)
  int64_t iterations = 0;
  bool mesh_written = false;  // mesh.obj, mesh.ply and mesh.png (none when the field is empty)
};

// Trains into `out` (checkpoint.pt, metrics.csv, loss.png; a rerun resumes) and writes
// field.safetensors, views.png, turntable.gif (+ .mp4 with ffmpeg), mesh.obj, mesh.ply, mesh.png.
Generate3dResult run_generate3d(const Generate3dConfig& cfg, const std::filesystem::path& out, bool progress,
                                const std::string& config_text);

}  // namespace retort
