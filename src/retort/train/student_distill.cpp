#include "retort/train/student_distill.h"

#include <fmt/format.h>
#include <fmt/ranges.h>  // fmt::join ({fmt} 11 moved it here)

#include <algorithm>

#include "retort/core/error.h"
#include "retort/dist/world.h"
#include "retort/io/safetensors.h"
#include "retort/models/feature_discriminator.h"
#include "retort/models/unet.h"
#include "retort/plot/curves.h"
#include "retort/run/run_folder.h"
#include "retort/train/checkpoint.h"

namespace retort {
namespace fs = std::filesystem;

MethodPlan method_plan(const std::string& m) {
  if (m == "dmd") return {"dmd", false, "none", 1, 0.0};
  // DMD2's GAN weights (ImageNet): 3e-3 on the student, 1e-2 on the discriminator, whose head
  // reads the fake score's encoder: a larger weight lets the classifier, not the denoising loss,
  // drive that encoder.
  if (m == "dmd2") return {"dmd2", false, "fake", 5, 3e-3, 1e-2};
  if (m == "fvgen") return {"softened_rkl", true, "teacher", 1, 0.0};
  if (m == "rkl") return {"dmd", true, "teacher", 1, 0.0};
  if (m == "gan") return {"", true, "teacher", 1, 0.0};
  if (m == "softened_rkl") return {"softened_rkl", false, "teacher", 1, 0.0};
  if (m == "kl" || m == "js" || m == "hellinger" || m == "jeffreys") return {m, true, "teacher", 1, 0.0};
  throw ConfigError(fmt::format("unknown distillation method '{}'; known: {}", m,
                                fmt::join(distill_method_names(), ", ")));
}

std::vector<std::string> distill_method_names() {
  return {"dmd", "dmd2", "fvgen", "rkl", "gan", "softened_rkl", "kl", "js", "hellinger", "jeffreys"};
}

void apply_method_preset(StudentConfig& c) {
  const auto plan = method_plan(c.method);
  c.loop.critic_steps = plan.critic_steps;
  c.objective.gan_weight = plan.gan_weight;
  c.objective.disc_weight = plan.disc_weight;
}

namespace {

OptionTable<StudentConfig> make_student_option_table(bool regression) {
  using C = StudentConfig;
  OptionTable<C> t;
  t.choice("method", &C::method, distill_method_names(), "the recipe (presets below)")
      .integer("student_steps", &C::student_steps, 1, 1000, "K, the student's sampling steps")
      .numbers("timesteps", &C::timesteps, 0, 100000, "the student's K discrete timesteps; [] = 999, 749, ... spacing")
      .flag("backward_simulation", &C::backward_simulation,
            "train on the student's own intermediate x_t (DMD2) instead of noised data")
      .integer("gan_init_steps", &C::gan_init_steps, 0, 100'000'000, "stage 1 (GAN initialisation) updates")
      .number("gan_init_lr", &C::gan_init_lr, 0, 10,
              "stage 1's generator learning rate; 0 = lr (Adam moves every weight by about lr per update, "
              "however weak the discriminator's signal)")
      .named("disc_features", &C::disc_features, disc_feature_names(),
             "what the discriminator head reads: bottleneck (DMD2's head) or levels (a patch head on every "
             "encoder level)")
      .choice("fake", &C::fake, {"copy", "lora"},
              "the fake score: copy (a trainable copy of the teacher) or lora (LoRA adapters on the frozen "
              "teacher; a retort UNet teacher)")
      .include(unet_lora_option_table(), &C::lora)
      .include(distill_loop_option_table(), &C::loop)
      .include(objective_option_table(), &C::objective,
               {"cfg_scale", "weighting", "dmd_normalize", "logit_clamp", "normalize_h", "gan_weight", "disc_weight",
                "r1_weight", "r1_sigma"});
  if (regression)
    t.number("regression_weight", [](C& c) -> double& { return c.regression.weight; }, 0, 1e6,
              "DMD's regression loss on teacher noise -> image pairs; 0 = off")
      .integer("regression_pairs", [](C& c) -> int64_t& { return c.regression.pairs; }, 1, 10'000'000,
               "teacher pairs, made once per run folder")
      .integer("regression_batch", [](C& c) -> int64_t& { return c.regression.batch; }, 0, 1'000'000,
               "pairs per generator update; 0 = the distillation batch")
      .integer("regression_teacher_steps", [](C& c) -> int64_t& { return c.regression.teacher_steps; }, 1, 1000,
               "DDIM steps of the teacher for the pairs");
  t.integer("seed", [](C& c) -> uint64_t& { return c.seed; }, 0, INT64_MAX, "random seed")
      .text("init", &C::init, "another distill run's folder to start from; empty: the teacher's weights")
      .check([](ConfigNode& n, const C& c) {
        if (!c.timesteps.empty() && int64_t(c.timesteps.size()) != c.student_steps)
          n.fail("timesteps", fmt::format("{} timesteps for student_steps = {}", c.timesteps.size(), c.student_steps));
        if (c.loop.checkpoint_every < 1) n.fail("checkpoint_every", "distill resumes from checkpoints: give >= 1");
        check_objective_options(n, c.method, c.objective);
        if (method_plan(c.method).gan_init && c.method != "gan" && c.gan_init_steps == 0)
          n.fail("gan_init_steps", fmt::format("method '{}' starts with a GAN initialisation; give it steps > 0", c.method));
        if (c.method == "gan" && c.gan_init_steps + c.loop.steps == 0) n.fail("steps", "gan: gan_init_steps + steps is 0");
      });
  return t;
}

}  // namespace

const OptionTable<StudentConfig>& student_option_table(bool regression) {
  static const auto with = make_student_option_table(true), without = make_student_option_table(false);
  return regression ? with : without;
}

const OptionTable<StudentConfig>& student_top_option_table() {
  static const auto table = [] {
    OptionTable<StudentConfig> t;
    t.text("teacher", &StudentConfig::teacher, "the teacher: a retort safetensors file (train-teacher; for distill-nvs train-nvs-teacher) or a TorchScript archive (.pt; README, \"Distil your own PyTorch model\")");
    return t;
  }();
  return table;
}

void read_student_top(ConfigNode& root, StudentConfig& c) {
  student_top_option_table().read(root, c);
  if (root.has("torchscript")) {
    auto n = root.table("torchscript");
    c.teacher_contract = read_script_contract(n);
  }
}

void read_student_keys(ConfigNode& n, StudentConfig& c, bool regression) {
  const auto& table = student_option_table(regression);
  table.read_key(n, c, "method");
  apply_method_preset(c);
  table.read(n, c);
}

std::string method_presets_markdown(const StudentConfig& defaults) {
  std::string md = "| method | preset (applied before the file's keys) |\n|---|---|\n";
  for (const auto& m : distill_method_names()) {
    StudentConfig base = defaults;
    base.method = m;
    auto c = base;
    apply_method_preset(c);
    const auto d = student_option_table().differences(base, c);
    md += fmt::format("| `{}` | {} |\n", m, d.empty() ? "the defaults" : d);
  }
  return md;
}

namespace {

// [distill] init: the last checkpoint (stage2/, else stage1/) of the run in `cfg.init` gives the
// student, its fake score, and its discriminator head when that run's head read the same network
// (methods.md: DMD2's reads the fake score, FVGen's the teacher); the average starts at that run's
// average, else at its student. Optimisers, step and RNG start anew, and so do the rate schedules.
// Returns the updates the starting average had seen, so that its warm-up does not restart.
int64_t warm_start(const StudentConfig& cfg, const MethodPlan& plan, FewStepStudent& student,
                   DiffusionModel& fake, FeatureDiscriminator& disc, FewStepStudent& average) {
  const fs::path& dir = cfg.init;
  const auto resolved = dir / "config.resolved.toml";
  if (!fs::exists(resolved))
    throw ConfigError(fmt::format("distill.init: {} is not a distill run folder (it has no config.resolved.toml)",
                                  dir.string()));
  auto root = ConfigNode::from_file(resolved);
  auto d = root.table("distill");
  if (!d.has("method")) d.fail("method", "missing: not a distill run's config");
  const auto from = method_plan(d.string("method", ""));
  fs::path ckpt = dir / "stage2" / "checkpoint.pt";
  if (!fs::exists(ckpt)) ckpt = dir / "stage1" / "checkpoint.pt";
  if (!fs::exists(ckpt))
    throw ConfigError(fmt::format("distill.init: {} has no checkpoint (stage2/ or stage1/checkpoint.pt)", dir.string()));
  std::map<std::string, torch::nn::Module*> modules{{"generator", student.get()}, {"fake", &fake}};
  if (disc && from.disc == plan.disc) modules["disc"] = disc.get();
  if (average) modules["generator_ema"] = average.get();
  std::vector<std::string> loaded;
  const int64_t step = load_checkpoint_weights(ckpt, modules, &loaded);
  auto has = [&](const std::string& name) { return std::find(loaded.begin(), loaded.end(), name) != loaded.end(); };
  if (!has("generator")) throw IoError(fmt::format("{}: holds no student (module.generator)", ckpt.string()));
  fmt::print(stderr, "distill: starting from {} at step {} ({})\n", ckpt.string(), step, fmt::join(loaded, ", "));
  if (!average) return 0;
  if (has("generator_ema")) return step;
  copy_weights(*student, *average);
  return 0;
}

}  // namespace

FewStepStudent distill_student(const StudentConfig& cfg, const StudentData& data, const fs::path& out,
                               bool progress, const std::string& config_text, double* train_seconds) {
  auto teacher = load_diffusion_model(cfg.teacher, nullptr, cfg.teacher_contract ? &*cfg.teacher_contract : nullptr);
  const auto unet_teacher = std::dynamic_pointer_cast<UNetDenoiserImpl>(teacher);
  if (cfg.fake == "lora" && !unet_teacher)
    throw ConfigError(fmt::format("distill.fake = \"lora\" adds adapters to the layers of a retort UNet; the "
                                  "TorchScript teacher {} takes fake = \"copy\"", cfg.teacher.string()));
  if (data.check_teacher) data.check_teacher(*teacher);
  auto device = start_run(out, cfg.runtime, true);
  const World& w = world();
  const auto plan = method_plan(cfg.method);
  torch::manual_seed(cfg.seed);
  Rng rng(cfg.seed);

  freeze(*teacher);
  teacher->eval();
  auto fresh_copy = [&] { return teacher->copy(); };
  auto timesteps = cfg.timesteps.empty() ? default_student_timesteps(cfg.student_steps, teacher->schedule.options().steps)
                                         : cfg.timesteps;
  FewStepStudent student(fresh_copy(), timesteps, cfg.backward_simulation);
  DiffusionModelPtr fake = cfg.fake == "lora" ? lora_copy(*unet_teacher, cfg.lora).ptr() : fresh_copy();
  teacher->to(device);
  student->to(device);
  fake->to(device);
  if (data.conditions) student->set_conditions(data.conditions);
  if (cfg.regression.weight > 0) {
    if (!data.regression)
      throw ConfigError("distill.regression_weight: this pipeline has no regression pairs; set it to 0");
    const int64_t batch = cfg.regression.batch > 0 ? cfg.regression.batch : cfg.loop.batch;
    if (cfg.regression.batch > 0) rank_slice(batch, "distill.regression_batch");
    student->set_regression(data.regression(*teacher, out / "regression-pairs.safetensors"), cfg.regression.weight,
                            batch);
  }

  RealSampler real;
  if (plan.disc != "none") {
    if (!data.real) throw Error("distill: method '" + cfg.method + "' needs real samples and the pipeline gave none");
    real = data.real(*teacher, device);
  }
  FeatureDiscriminator disc{nullptr};
  if (plan.disc == "teacher") disc = FeatureDiscriminator(teacher, cfg.disc_features);
  if (plan.disc == "fake") disc = FeatureDiscriminator(fake, cfg.disc_features);
  if (disc) disc->to(device);
  // [distill] ema: the moving average of the student's weights, the one saved as the student.
  // Built last: constructing a network draws from the seeded generator, and the average must
  // not change how the discriminator head above is initialised.
  FewStepStudent average{nullptr};
  if (cfg.loop.ema > 0) {
    average = FewStepStudent(fresh_copy(), timesteps, cfg.backward_simulation);
    freeze(*average);
    average->to(device);
    if (data.conditions) average->set_conditions(data.conditions);
  }
  // [distill] steps only says where to stop (no schedule depends on it), so a finished student
  // continues when rerun with more steps.
  const int64_t stage1_steps = plan.gan_init ? cfg.gan_init_steps + (plan.objective.empty() ? cfg.loop.steps : 0) : 0;
  const auto same_run = same_run_but_length(config_text, "distill");
  bool fresh = true;  // no checkpoint of this run yet: [distill] init applies
  for (auto [stage, steps] : {std::pair{"stage1", stage1_steps}, std::pair{"stage2", cfg.loop.steps}}) {
    const auto ckpt = out / stage / "checkpoint.pt";
    fresh = fresh && !fs::exists(ckpt);
    require_within_steps(ckpt, require_same_config(ckpt, config_text, same_run), steps);
  }
  write_resolved_config(out, config_text);  // after the checks: a refused run changes nothing
  const int64_t ema_prior = !cfg.init.empty() && fresh ? warm_start(cfg, plan, student, *fake, disc, average) : 0;

  auto plot_losses = [&](const fs::path& dir, const std::string& title) {
    plot_metrics_csv(dir / "metrics.csv", dir / "loss.png", {"gen_loss", "critic_loss"}, title, false);
  };
  Models models{teacher.get(), fake.get(), disc ? disc.get() : nullptr};
  double seconds = 0.0;
  if (stage1_steps > 0) {
    auto gan = make_objective("gan", cfg.objective, teacher->schedule);
    DistillLoopOptions L = cfg.loop;
    L.steps = stage1_steps;
    if (cfg.gan_init_lr > 0) L.gen_optim.lr = cfg.gan_init_lr;
    L.critic_steps = 1;
    L.ema_prior_updates = ema_prior;
    L.progress = progress;
    L.label = cfg.method + " stage 1 (GAN init)";
    DistillLoop loop(L, *student, *gan, models, nullptr, real, teacher->schedule, device);
    if (average) loop.track_ema(*average);
    loop.run(out / "stage1", rng, config_text, same_run);
    seconds += loop.seconds();
    if (w.writes()) plot_losses(out / "stage1", cfg.method + " stage 1: GAN initialisation");
  }
  if (!plan.objective.empty() && cfg.loop.steps > 0) {
    auto obj = make_objective(plan.objective, cfg.objective, teacher->schedule);
    DistillLoopOptions L = cfg.loop;
    L.ema_prior_updates = ema_prior;
    L.progress = progress;
    L.label = cfg.method + (plan.gan_init ? " stage 2 (" + plan.objective + ")" : "");
    DistillLoop loop(L, *student, *obj, models, fake.get(), real, teacher->schedule, device);
    if (average) loop.track_ema(*average);
    loop.run(out / "stage2", rng, config_text, same_run);
    seconds += loop.seconds();
    if (w.writes()) plot_losses(out / "stage2", cfg.method + " stage 2: " + plan.objective);
  }
  if (train_seconds) *train_seconds = seconds;
  FewStepStudent& result = average ? average : student;
  if (!w.writes()) return result;  // rank 0 writes
  const auto ext = result->net->file_extension();
  if (average) save_student(out / ("student-raw" + ext), student);
  save_student(out / ("student" + ext), result);
  if (data.preview) data.preview(result, out);
  return result;
}

}  // namespace retort
