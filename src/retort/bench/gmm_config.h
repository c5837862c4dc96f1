// The config of `retort bench-gmm`: a Gaussian-mixture target, a schedule, and a list of
// method x generator runs. Every key is documented in the README; [defaults] sets any run key for
// all runs and each [[run]] may override it.
#pragma once
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "retort/bench/gmm_ratio.h"
#include "retort/core/config.h"
#include "retort/core/runtime.h"
#include "retort/diffusion/schedule.h"
#include "retort/distill/objective.h"
#include "retort/models/gaussian_mixture.h"
#include "retort/models/script_contract.h"
#include "retort/train/distill_loop.h"

namespace retort {

struct RunSpec {
  std::string name;
  std::string method = "sds";
  std::string generator = "particles";
  ObjectiveOptions objective;
  DistillLoopOptions loop;
  // fake score and discriminator
  std::string fake = "delta";
  int64_t fake_hidden = 128, fake_blocks = 2;
  int64_t disc_hidden = 128, disc_blocks = 2;
  // generators
  int64_t particles = 512;
  double init_std = 1.0;
  int64_t latent_dim = 0, gen_hidden = 128, gen_blocks = 2;  // latent 0: the data dimension
  std::string config_text;  // resolved keys of this run (+ target, schedule, seed): resume identity
};

// [target] with preset = "ring" (preset = "modes" reads [[target.mode]] tables instead).
struct TargetSpec {
  std::string preset = "ring";
  int64_t modes = 8, dim = 2;  // K isotropic modes on a circle in the first two coordinates
  double radius = 2.0, std = 0.1;
  bool classes = false;  // mode k has class k (a conditional target, CFG)
};

// One [[target.mode]] table of preset = "modes": a Gaussian component.
struct ModeSpec {
  std::vector<double> mean;               // D coordinates (required)
  std::vector<std::vector<double>> cov;   // D x D covariance; empty: std * identity
  double std = 0.1;
  double weight = 1.0;
  int64_t cls = kNullClass;               // the mode's class; -1: none
};

struct EvalSpec {
  int64_t samples = 2000;    // generated samples scored (network generators; particles use all)
  int64_t reference = 5000;  // exact target samples
};

struct GmmBenchConfig {
  uint64_t seed = 0;
  int64_t seeds = 1;  // every run repeated with this many independent seeds (run_seed)
  RuntimeOptions runtime;
  // A TorchScript model of the mixture to distil instead of its exact score (top-level `teacher`,
  // optional [torchscript]); the scores stay against the exact target. Empty: the exact teacher.
  std::filesystem::path teacher;
  std::optional<ScriptContract> teacher_contract;
  std::vector<MixtureComponent> components;
  ScheduleOptions schedule;
  EvalSpec eval;
  std::vector<RunSpec> runs;
  RatioCheckOptions ratio;        // [ratio]: the learned density ratio against the exact one
  std::string ratio_identity;     // its resolved keys + target, schedule, seed: resume identity
  std::string resolved;  // the whole resolved config, TOML
};

// The top-level keys: seed, seeds, teacher.
const OptionTable<GmmBenchConfig>& gmm_top_option_table();
// The [target] (ring) and [eval] keys; [schedule] is schedule_option_table().
const OptionTable<TargetSpec>& gmm_target_option_table();
const OptionTable<EvalSpec>& gmm_eval_option_table();
// The keys of a [[target.mode]] table.
const OptionTable<ModeSpec>& gmm_mode_option_table();
// The keys of a [[run]] (and of [defaults]).
const OptionTable<RunSpec>& gmm_run_option_table();

// The seed of repetition k of every run: `seed` itself for k = 0, independent streams after it.
uint64_t run_seed(const GmmBenchConfig& cfg, int64_t k);

// Parses and validates everything up front; throws ConfigError naming file and key.
GmmBenchConfig load_gmm_bench_config(const std::filesystem::path& path);
GmmBenchConfig parse_gmm_bench_config(ConfigNode root);

}  // namespace retort
