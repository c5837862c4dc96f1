// `retort generate3d`: text-to-3D by score distillation (Algorithm 1 of seed 002). A radiance field
// is rendered from random cameras and updated with the SDS, VSD or ASD generator gradient from a
// prompt-conditioned UNet teacher trained on retort's procedural world; VSD and ASD also train a
// fake score phi online (the core's DistillLoop and objectives, unchanged).
#pragma once
#include <filesystem>
#include <string>

#include "retort/core/config.h"
#include "retort/core/runtime.h"
#include "retort/distill/objective.h"
#include "retort/text3d/field_config.h"
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

struct Generate3dConfig {
  std::filesystem::path teacher;  // prompt-conditioned UNet (retort train-teacher on the world)
  std::string prompt = "a red torus";
  std::string method = "asd";     // sds | vsd | asd
  std::string fake = "embedding";  // vsd / asd phi: embedding (textual inversion, one per view) |
                                   // copy (camera-conditioned full copy of the teacher)
  FieldSpec field;
  FieldGeneratorOptions render;
  DistillLoopOptions loop;         // steps = iterations, batch = views per iteration
  ObjectiveOptions objective;      // cfg_scale = lambda, gamma, weighting
  Generate3dOutputs outputs;
  uint64_t seed = 0;
  RuntimeOptions runtime;
};

std::vector<std::string> generate3d_method_names();  // sds, vsd, asd
// Reads `teacher`, `prompt`, [generate3d], [field], [output], [runtime]. A non-empty `prompt` /
// `method` overrides the file (the CLI's --prompt / --method); per-method defaults (lambda 100 for
// SDS, 7.5 for VSD and ASD; gamma -0.75) apply unless the file sets them.
Generate3dConfig read_generate3d_config(ConfigNode& root, const std::string& prompt = "",
                                        const std::string& method = "");

struct Generate3dResult {
  double seconds_per_iteration = 0;  // of this invocation's training (0 when it only resumed)
  int64_t iterations = 0;
};

// Trains into `out` (checkpoint.pt, metrics.csv, loss.png; a rerun resumes) and writes
// field.safetensors, views.png, turntable.gif (+ .mp4 with ffmpeg), mesh.obj, mesh.ply.
Generate3dResult run_generate3d(const Generate3dConfig& cfg, const std::filesystem::path& out, bool progress,
                                const std::string& config_text);

}  // namespace retort
