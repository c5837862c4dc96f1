// `retort generate2d`: score distillation in 2-D (ProlificDreamer's and ASD's 2-D setting). N image
// particles per prompt are optimised directly with the SDS, VSD or ASD generator gradient of a
// class- or prompt-conditioned UNet teacher (the Fashion-MNIST teacher's class names, the world
// teacher's text prompts); VSD and ASD train phi online as a condition embedding, LoRA adapters or
// a full copy of the teacher. The objectives, loop, checkpoints and outputs are the core's
// (distill/score_distillation.h, train/distill_loop.h), as in generate3d with the field replaced by
// particles. ASD's discriminator takes real images of the prompts' classes (seed 002 Eq. 5, with
// eta) when `asd_real` is set and a [data] table gives them.
#pragma once
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "retort/core/config.h"
#include "retort/core/runtime.h"
#include "retort/distill/objective.h"
#include "retort/image/dataset_config.h"
#include "retort/models/unet.h"
#include "retort/text2d/image_particles.h"
#include "retort/train/distill_loop.h"

namespace retort {

// generate2d's loop defaults: every particle in every update, Adam 2e-2 on the particles, t_max
// annealed linearly from 0.98 to 0.2 (without it the particles keep the speckle of their initial
// noise: small t is drawn too rarely to remove it).
inline DistillLoopOptions generate2d_loop_defaults() {
  DistillLoopOptions l;
  l.steps = 500;
  l.batch = 16;
  l.gen_optim = OptimOptions{2e-2, 0.9, 0.99, 0.0, 0.0};
  l.critic_optim = OptimOptions{1e-3, 0.9, 0.999, 0.0, 10.0};
  l.time = TimeRange{0.02, 0.98, Anneal::Linear, 0.2, 0.2};
  l.log_every = 10;
  l.checkpoint_every = 100;
  return l;
}
// ASD's 2-D discriminator weights (methods.md): gamma -1, eta 1/2.
inline ObjectiveOptions generate2d_objective_defaults() {
  ObjectiveOptions o;
  o.cfg_scale = 7.5;
  o.gamma = -1.0;
  o.eta = 0.5;
  return o;
}

struct Generate2dConfig {
  std::filesystem::path teacher = "weights/fmnist-teacher.safetensors";
  std::vector<std::string> prompts = {"sneaker"};
  std::string method = "asd";  // sds | vsd | asd
  std::string fake = "lora";   // vsd / asd phi: embedding | lora | copy
  UNetLora lora;
  DistillLoopOptions loop = generate2d_loop_defaults();
  ObjectiveOptions objective = generate2d_objective_defaults();  // cfg_scale, gamma, eta, asd_real, weighting
  int64_t particles = 16;  // per prompt
  double init_std = 1.0;   // particles start N(0, init_std^2)
  uint64_t seed = 0;
  std::optional<DataConfig> data;  // [data]: real images of the prompts' classes (asd_real)
  RuntimeOptions runtime;
};

std::vector<std::string> generate2d_method_names();  // sds, vsd, asd
std::vector<std::string> generate2d_fake_names();    // embedding, lora, copy
// The [generate2d] keys. Presets (apply_generate2d_presets: lambda 100 for SDS, 7.5 for VSD / ASD;
// critic_lr 1e-4 for fake = "copy", else 1e-3) apply after `method` and `fake` and before the rest.
const OptionTable<Generate2dConfig>& generate2d_option_table();
// The top-level keys: `teacher`, `prompts`.
const OptionTable<Generate2dConfig>& generate2d_top_option_table();
void apply_generate2d_presets(Generate2dConfig& c);
// Reads `teacher`, `prompts`, [generate2d], [data] (optional), [runtime].
Generate2dConfig read_generate2d_config(ConfigNode& root);
// The [generate2d] keys of `table` on top of `base`'s top-level keys, [data] and [runtime], with the
// presets of the method and fake that `over` (else `table`, else the defaults) names, then `over`'s
// keys on top (bench-2d's [[run]] tables). Checks asd_real against [data].
Generate2dConfig read_generate2d_keys(const Generate2dConfig& base, ConfigNode& table, ConfigNode* over);

struct Generate2dResult {
  torch::Tensor images;  // the particles [N,C,R,R] clamped to [-1,1]
  torch::Tensor labels;  // [N]
  double seconds_per_iteration = 0;  // of this invocation's training (0 when it only resumed)
  double train_seconds = 0;          // the loop's seconds over every invocation
  int64_t iterations = 0;
};

// Trains into `out` (checkpoint.pt, metrics.csv, loss.png; a rerun resumes) and writes
// particles.safetensors ("images" in [-1,1], "labels": `retort eval` reads it) and particles.png
// (a row per prompt).
Generate2dResult run_generate2d(const Generate2dConfig& cfg, const std::filesystem::path& out, bool progress,
                                const std::string& config_text);

}  // namespace retort
