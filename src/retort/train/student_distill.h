// A few-step student from a UNet teacher, shared by every pipeline that has one (`retort distill`
// for images, `retort distill-nvs` for novel-view clips). Each method is a plan over the core's
// objectives (distill/), run by the core's DistillLoop in up to two stages:
//   stage 1  GAN initialisation against real samples (FVGen), discriminator = frozen teacher
//            encoder + trainable head;
//   stage 2  distribution matching with a fake score trained online (and, for the ratio-weighted
//            objectives and DMD2, a discriminator).
// Student and fake score start from the teacher's weights, or with `init` from another run's last
// checkpoint. The pipeline supplies its data (StudentData): real samples, the conditions of the
// student's draws, and the picture of the result.
#pragma once
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "retort/core/config.h"
#include "retort/core/options.h"
#include "retort/core/runtime.h"
#include "retort/distill/objective.h"
#include "retort/generators/few_step_student.h"
#include "retort/models/feature_discriminator.h"
#include "retort/models/unet.h"
#include "retort/train/distill_loop.h"

namespace retort {

// What a method runs. disc: "none", "teacher" (frozen teacher encoder + head, FVGen) or "fake"
// (head on the fake score's bottleneck, DMD2).
struct MethodPlan {
  std::string objective;     // stage-2 objective (make_objective); "" = no stage 2
  bool gan_init = false;     // run stage 1
  std::string disc = "none";
  int64_t critic_steps = 1;  // default fake-score updates per student update
  double gan_weight = 0.0;   // default generator GAN weight in stage 2
  double disc_weight = 1.0;  // default weight of the discriminator's loss in the critic update
};

// dmd, dmd2, fvgen (GAN init + softened RKL), rkl (GAN init + plain RKL), gan (GAN only),
// softened_rkl (no GAN init), kl, js, hellinger, jeffreys (GAN init + that f-divergence).
MethodPlan method_plan(const std::string& method);
std::vector<std::string> distill_method_names();

// DMD's optional regression loss (FewStepStudentImpl::set_regression); off when weight = 0.
struct RegressionOptions {
  double weight = 0.0;        // DMD: 0.25 (with LPIPS; here pixel MSE)
  int64_t pairs = 1000;       // teacher noise -> sample pairs, made once per run folder
  int64_t batch = 0;          // pairs per generator update; 0 = the distillation batch
  int64_t teacher_steps = 50; // DDIM steps of the teacher (guided by cfg_scale)
};

// The loop defaults: DMD2's rates at batch 32.
inline DistillLoopOptions student_loop_defaults() {
  DistillLoopOptions l;
  l.steps = 1000;
  l.batch = 32;
  l.gen_optim = OptimOptions{1e-4, 0.9, 0.999, 0.01, 10.0};
  l.critic_optim = l.gen_optim;
  l.log_every = 20;
  l.checkpoint_every = 100;
  return l;
}

struct StudentConfig {
  std::filesystem::path teacher = "weights/fmnist-teacher.safetensors";
  std::optional<ScriptContract> teacher_contract;  // [torchscript]: how to call a TorchScript teacher
  // Another run's folder to start from (warm_start in the .cpp); empty: the teacher's weights.
  std::filesystem::path init;
  std::string method = "fvgen";
  int64_t student_steps = 4;
  std::vector<int64_t> timesteps;  // empty: 999, 749, 499, 249 spacing for student_steps
  bool backward_simulation = true;
  int64_t gan_init_steps = 300;    // stage 1 length (methods with GAN init)
  double gan_init_lr = 0.0;        // stage 1's generator learning rate; 0 = loop.gen_optim.lr
  DiscFeatures disc_features = DiscFeatures::Bottleneck;  // what the discriminator head reads
  std::string fake = "copy";       // the fake score: copy | lora (adapters on the frozen teacher)
  UNetLora lora;
  DistillLoopOptions loop = student_loop_defaults();  // stage 2 (and, for "gan", stage 1 runs gan_init_steps + loop.steps)
  ObjectiveOptions objective;
  RegressionOptions regression;
  uint64_t seed = 0;
  RuntimeOptions runtime;
};

// The [distill] keys. A method's preset (apply_method_preset: its plan's critic_steps, gan_weight,
// disc_weight) is applied after `method` is read and before the other keys. `regression`: with the
// keys of DMD's regression loss; a pipeline that has no regression pairs leaves them out, so they
// are unknown keys there.
const OptionTable<StudentConfig>& student_option_table(bool regression = true);
// The top-level keys of a distill config: `teacher`.
const OptionTable<StudentConfig>& student_top_option_table();
// Reads the top-level keys and, when present, the [torchscript] table of `root`.
void read_student_top(ConfigNode& root, StudentConfig& c);
void apply_method_preset(StudentConfig& c);
// Reads `method`, applies its preset, then the other [distill] keys of `n` into `c`.
void read_student_keys(ConfigNode& n, StudentConfig& c, bool regression = true);
// The method presets as a markdown table (for `retort config`), from `base`'s other values.
std::string method_presets_markdown(const StudentConfig& base);

// What a pipeline gives the shared trainer.
struct StudentData {
  // Refuses a teacher this pipeline cannot use (ConfigError), before anything is written.
  std::function<void(const DiffusionModel& teacher)> check_teacher;
  // Real samples with their conditions, checked against the teacher; called only when the
  // method has a discriminator.
  std::function<RealSampler(const DiffusionModel& teacher, const torch::Device& device)> real;
  // The conditions of the student's draws; empty: random classes.
  ConditionSampler conditions;
  // DMD's regression pairs, made once in `path` (a rerun reuses matching ones); empty: this
  // pipeline has none and regression.weight > 0 is refused.
  std::function<RegressionPairs(DiffusionModel& teacher, const std::filesystem::path& path)> regression;
  // Writes the finished student's picture(s) into the run folder.
  std::function<void(FewStepStudent& student, const std::filesystem::path& out)> preview;
};

// Trains into `out` (stage1/, stage2/ with checkpoint, metrics and loss.png each;
// student.safetensors and what `data.preview` writes; regression-pairs.safetensors when the
// regression loss is on); a rerun resumes. With loop.ema > 0 the student is the moving average of
// the trained weights (those last weights go to student-raw.safetensors). Returns the student;
// `train_seconds`, when given, receives the training loops' wall seconds since step 0, earlier
// invocations included.
FewStepStudent distill_student(const StudentConfig& cfg, const StudentData& data, const std::filesystem::path& out,
                               bool progress, const std::string& config_text, double* train_seconds = nullptr);

}  // namespace retort
