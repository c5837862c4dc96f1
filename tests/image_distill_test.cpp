// End to end on a tiny synthetic image set (bars in four positions per class): train a teacher,
// distil a 1-step student, and check that the student's FID improves on where it started (the
// teacher's weights used as a 1-step generator); every method plan runs through both stages and
// leaves its files.
#include <fmt/format.h>

#include <cmath>
#include <fstream>
#include <gtest/gtest.h>

#include "image_test_util.h"
#include "retort/core/error.h"
#include "retort/eval/image_metrics.h"
#include "retort/generators/image_sampling.h"
#include "retort/io/safetensors.h"
#include "retort/models/feature_discriminator.h"
#include "retort/train/checkpoint.h"
#include "retort/train/distill_loop.h"
#include "retort/image/image_distill.h"
#include "retort/image/teacher_train.h"

namespace retort {
namespace {

struct TinyWorld {
  test::TempDir tmp{"image-distill"};
  std::string data_toml;
  std::filesystem::path teacher;
  TinyWorld() {
    test::write_bar_dataset(tmp.path, 96);
    data_toml = test::block_data_toml(tmp.path);
    auto root = ConfigNode::from_string(data_toml +
                                            "[model]\nwidths = [32, 32]\ntime_dim = 32\ngroups = 8\nheads = 1\n"
                                            "[train]\nsteps = 400\nbatch = 32\nlr = 2e-3\nwarmup = 20\nema = 0.99\n"
                                            "checkpoint_every = 1000\nlog_every = 100\n[preview]\nsteps = 4\n",
                                        "teacher.toml");
    auto cfg = read_teacher_config(root);
    train_teacher(cfg, tmp.path / "teacher", false, root.resolved_toml());
    teacher = tmp.path / "teacher" / "teacher.safetensors";
  }
  ImageDistillConfig distill_config(const std::string& method, int64_t steps, int64_t gan_init,
                                    const std::string& extra = "") {
    auto root = ConfigNode::from_string(
        "teacher = \"" + teacher.string() + "\"\n" + data_toml +
            fmt::format("[distill]\nmethod = \"{}\"\nstudent_steps = 1\nsteps = {}\ngan_init_steps = {}\nbatch = 16\n"
                        "lr = 1e-4\ncritic_lr = 1e-4\nlog_every = 10\ncheckpoint_every = 25\n",
                        method, steps, gan_init) +
            extra,
        "distill.toml");
    auto cfg = read_image_distill_config(root);
    root.finish();
    return cfg;
  }
};

namespace fs = std::filesystem;

// All of a module's parameters in one vector.
torch::Tensor flat(torch::nn::Module& m) {
  std::vector<torch::Tensor> p;
  for (const auto& t : m.parameters()) p.push_back(t.detach().flatten());
  return torch::cat(p);
}

TinyWorld& world() {
  static TinyWorld w;
  return w;
}

// Frechet distance in pixel space (64-dim): the tiny set needs no trained feature network.
double fid_of(FewStepStudent& s, const torch::Tensor& data) {
  Rng rng(7);
  return frechet_distance(s->sample(balanced_labels(3, 300), rng).flatten(1), data.flatten(1));
}

// The 1-step student starts as the teacher's x0 prediction at t = 1, the class mean: the bars of
// all four modes smeared into one grey image, far from the data. DMD must pull it to the modes.
// (On the earlier set of near-identical images per class the mean already matched the data and
// DMD could only make it worse: 1.08 -> 10.1; that set could not show the improvement.)
TEST(ImageDistill, DmdStudentImprovesOnItsInitialFid) {
  auto& w = world();
  auto data = load_dataset(read_data_config(ConfigNode::from_string(w.data_toml, "d").table("data")), "train");
  auto cfg = w.distill_config("dmd", 150, 0);
  auto teacher = load_unet(w.teacher);
  FewStepStudent initial(teacher.ptr(), std::vector<int64_t>{999});
  double before = fid_of(initial, data.images);
  auto student = distill_images(cfg, w.tmp.path / "dmd", false, "dmd");
  double after = fid_of(student, data.images);
  fmt::print("pixel Frechet distance: initial 1-step student {:.3f}, after DMD {:.3f}\n", before, after);
  EXPECT_LT(after, 0.7 * before) << "initial FID " << before << ", after DMD " << after;
  EXPECT_TRUE(std::filesystem::exists(w.tmp.path / "dmd" / "student.safetensors"));
  EXPECT_TRUE(std::filesystem::exists(w.tmp.path / "dmd" / "stage2" / "loss.png"));
}

// DMD's regression loss: the pairs are the teacher's DDIM samples from the stored noise, and
// training with the loss pulls the student's first step onto them, well beyond what DMD alone does.
TEST(ImageDistill, RegressionPullsTheStudentOntoTheTeachersPairs) {
  auto& w = world();
  const std::string reg = "regression_weight = 2.0\nregression_pairs = 48\nregression_teacher_steps = 10\n";
  auto dir = w.tmp.path / "dmd-reg";
  auto student = distill_images(w.distill_config("dmd", 60, 0, reg), dir, false, "dmd-reg");
  auto plain = distill_images(w.distill_config("dmd", 60, 0), w.tmp.path / "dmd-plain", false, "dmd-plain");
  auto pairs = load_safetensors(dir / "regression-pairs.safetensors");
  ASSERT_EQ(pairs["noise"].sizes(), (std::vector<int64_t>{48, 1, 8, 8}));

  auto teacher = load_unet(w.teacher);
  Rng unused(0);
  TeacherSampling s;
  s.steps = 10;
  auto again = sample_teacher(*teacher, pairs["labels"], s, unused, pairs["noise"]);
  EXPECT_TRUE(torch::allclose(again, pairs["images"], 1e-5, 1e-5)) << "the pairs are not the teacher's samples";

  auto error = [&](DiffusionModelPtr net) {
    torch::NoGradGuard ng;
    auto t = torch::full({48}, net->schedule.time_of_step(999));
    return (net->x0(pairs["noise"], t, Cond::classes(pairs["labels"])) - pairs["images"]).pow(2).mean().item<double>();
  };
  const double initial = error(teacher.ptr()), with_reg = error(student->net), without = error(plain->net);
  fmt::print("first-step MSE to the teacher's pairs: initial {:.4f}, DMD {:.4f}, DMD + regression {:.4f}\n", initial,
             without, with_reg);
  EXPECT_LT(with_reg, 0.6 * initial);
  EXPECT_LT(with_reg, 0.8 * without);
  // A rerun reuses the stored pairs.
  auto before = std::filesystem::last_write_time(dir / "regression-pairs.safetensors");
  distill_images(w.distill_config("dmd", 60, 0, reg), dir, false, "dmd-reg");
  EXPECT_EQ(before, std::filesystem::last_write_time(dir / "regression-pairs.safetensors"));
}

TEST(ImageDistill, EveryPlanRunsItsStagesAndResumes) {
  auto& w = world();
  for (const std::string m : {"fvgen", "dmd2", "gan"}) {
    auto cfg = w.distill_config(m, 4, 3);
    auto dir = w.tmp.path / ("plan-" + m);
    distill_images(cfg, dir, false, m);
    auto plan = method_plan(m);
    EXPECT_EQ(std::filesystem::exists(dir / "stage1" / "checkpoint.pt"), plan.gan_init) << m;
    EXPECT_EQ(std::filesystem::exists(dir / "stage2" / "checkpoint.pt"), !plan.objective.empty()) << m;
    EXPECT_TRUE(std::filesystem::exists(dir / "samples.png")) << m;
    // A rerun finds finished checkpoints and does no further training.
    auto before = std::filesystem::last_write_time(dir / (plan.objective.empty() ? "stage1" : "stage2") / "checkpoint.pt");
    distill_images(cfg, dir, false, m);
    EXPECT_EQ(before, std::filesystem::last_write_time(dir / (plan.objective.empty() ? "stage1" : "stage2") /
                                                         "checkpoint.pt"));
  }
}

// FVGen's stage 2 continues when [distill] steps is raised, to the weights of a run asked for the
// longer length at first; a checkpoint beyond the steps, or of another config, is refused.
TEST(ImageDistill, RaisingStepsExtendsAFinishedStudent) {
  auto& w = world();
  auto run = [&](int steps, const std::string& dir, int gan_init = 3) {
    auto cfg = w.distill_config("fvgen", steps, gan_init);
    auto text = fmt::format("# teacher t\n[distill]\nsteps = {}\ngan_init_steps = {}\n", steps, gan_init);
    distill_images(cfg, w.tmp.path / dir, false, text);
    return load_safetensors(w.tmp.path / dir / "student.safetensors");
  };
  auto whole = run(6, "extend-whole");
  run(4, "extend-parts");
  auto extended = run(6, "extend-parts");
  for (const auto& [name, t] : whole) EXPECT_TRUE(torch::equal(t, extended.at(name))) << name;
  try {
    run(5, "extend-parts");
    ADD_FAILURE() << "a checkpoint beyond the steps was accepted";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("beyond the 5 steps"), std::string::npos) << e.what();
  }
  // Refused before anything is written: the folder still describes the 6-step run.
  std::ifstream resolved(w.tmp.path / "extend-parts" / "config.resolved.toml");
  std::string text((std::istreambuf_iterator<char>(resolved)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("steps = 6"), std::string::npos) << text;
  EXPECT_THROW(run(8, "extend-parts", 4), IoError) << "another GAN initialisation is another run";
}

// [distill] ema: the saved student is the moving average of the trained weights (decay
// min(ema, (k + 1) / (k + 10)) after update k), the trained weights go to student-raw, and the
// checkpoint carries the average: a run continued one step at a time ends where one run does.
TEST(ImageDistill, EmaStudentIsTheMovingAverageOfTheTrainedWeights) {
  auto& w = world();
  auto run = [&](int steps, const std::string& name) {
    auto dir = w.tmp.path / name;
    distill_images(w.distill_config("dmd", steps, 0, "ema = 0.2\n"), dir, false,
                   fmt::format("[distill]\nsteps = {}\nema = 0.2\n", steps));
    return std::pair{load_safetensors(dir / "student.safetensors"), load_safetensors(dir / "student-raw.safetensors")};
  };
  auto expected = load_safetensors(w.teacher);  // the average starts at the teacher's weights
  const double decays[] = {0.1, 2.0 / 11.0, 0.2};  // warm-up for updates 0 and 1, then the cap 0.2
  std::map<std::string, torch::Tensor> last, last_raw;
  for (int k = 0; k < 3; ++k) {
    auto [average, raw] = run(k + 1, "ema-continued");
    for (auto& [name, e] : expected) {
      e = decays[k] * e + (1 - decays[k]) * raw.at(name);
      EXPECT_TRUE(torch::allclose(average.at(name), e, 1e-5, 1e-6)) << name << " after update " << k;
    }
    last = average;
    last_raw = raw;
  }
  double moved = 0;
  for (const auto& [name, t] : last) moved = std::max(moved, (t - last_raw.at(name)).abs().max().item<double>());
  EXPECT_GT(moved, 1e-6) << "the average equals the trained weights";
  auto whole = run(3, "ema-whole").first;
  for (const auto& [name, t] : whole) EXPECT_TRUE(torch::equal(t, last.at(name))) << name;
}

// The average only watches: dmd2 (student, fake score and a discriminator head, all initialised
// from the seeded generator) trains the same weights with and without it. (Building the average
// once drew from that generator before the head did, so ema changed the head's initialisation.)
TEST(ImageDistill, EmaDoesNotChangeTheTrainedWeights) {
  auto& w = world();
  auto trained = [&](const std::string& name, const std::string& extra, const std::string& file) {
    distill_images(w.distill_config("dmd2", 2, 0, extra), w.tmp.path / name, false, "[distill]\n" + extra);
    return load_safetensors(w.tmp.path / name / file);
  };
  auto plain = trained("dmd2-plain", "", "student.safetensors");
  auto with_ema = trained("dmd2-ema", "ema = 0.5\n", "student-raw.safetensors");
  ASSERT_EQ(plain.size(), with_ema.size());
  for (const auto& [name, t] : plain) EXPECT_TRUE(torch::equal(t, with_ema.at(name))) << name;
}

// [distill] lr_half_life: update k of the student uses lr * 0.5^(k / lr_half_life). With a half-life
// of 1/1000 update every update after the first has a learning rate of ~1e-301, which is 0 in
// float: the student continued from 1 to 3 updates keeps its weights, where a constant rate moves them.
TEST(ImageDistill, LearningRateHalfLifeDecaysTheStudentsUpdates) {
  OptimOptions o;
  o.lr = 1e-3;
  EXPECT_DOUBLE_EQ(decayed_lr(o, 500), 1e-3) << "half_life = 0 is a constant rate";
  o.half_life = 100;
  EXPECT_DOUBLE_EQ(decayed_lr(o, 0), 1e-3);
  EXPECT_DOUBLE_EQ(decayed_lr(o, 100), 5e-4);
  EXPECT_DOUBLE_EQ(decayed_lr(o, 250), 1e-3 * std::pow(0.5, 2.5));
  auto& w = world();
  auto student_after = [&](int steps, const std::string& name, const std::string& half_life) {
    const auto extra = "lr_half_life = " + half_life + "\n";
    distill_images(w.distill_config("dmd", steps, 0, extra), w.tmp.path / name, false,
                   fmt::format("[distill]\nsteps = {}\n{}", steps, extra));
    return load_safetensors(w.tmp.path / name / "student.safetensors");
  };
  using Weights = std::map<std::string, torch::Tensor>;
  auto largest_change = [](const Weights& a, const Weights& b) {
    double d = 0;
    for (const auto& [name, t] : a) d = std::max(d, (t - b.at(name)).abs().max().item<double>());
    return d;
  };
  auto teacher = load_safetensors(w.teacher);
  auto decayed1 = student_after(1, "half-life", "0.001");
  auto decayed3 = student_after(3, "half-life", "0.001");
  EXPECT_GT(largest_change(decayed1, teacher), 1e-6) << "the first update runs at the full rate";
  EXPECT_EQ(largest_change(decayed3, decayed1), 0.0) << "updates 1 and 2 ran at a rate of ~1e-301";
  auto constant1 = student_after(1, "constant", "0");
  auto constant3 = student_after(3, "constant", "0");
  EXPECT_EQ(largest_change(constant1, decayed1), 0.0) << "update 0 does not depend on the half-life";
  EXPECT_GT(largest_change(constant3, constant1), 1e-6) << "a constant rate keeps moving the student";
}

// [distill] init: a run starts from another run's student, average, fake score and (same kind of
// critic) discriminator head, and the average's warm-up goes on counting that run's updates. With
// a critic rate of 1e-10 one update leaves the critic where it started, so the new run's checkpoint
// shows what it started from.
TEST(ImageDistill, InitStartsFromAnotherRunsWeights) {
  auto& w = world();
  const std::string ema = "ema = 0.5\n";
  auto from = w.tmp.path / "init-from";
  distill_images(w.distill_config("dmd2", 2, 0, ema), from, false, "[distill]\nmethod = \"dmd2\"\n" + ema);
  auto init = [&](const std::string& method, int steps, const std::string& name, const fs::path& source) {
    const auto extra = ema + "init = \"" + source.string() + "\"\n";
    auto cfg = w.distill_config(method, steps, method == "fvgen" ? 1 : 0, extra);
    cfg.loop.critic_optim.lr = 1e-10;
    distill_images(cfg, w.tmp.path / name, false, "[distill]\n" + extra);
    return w.tmp.path / name;
  };
  // No updates: the saved student and average are the other run's.
  auto zero = init("dmd2", 0, "init-zero", from);
  for (const char* file : {"student.safetensors", "student-raw.safetensors"}) {
    auto want = load_safetensors(from / file), got = load_safetensors(zero / file);
    for (const auto& [name, t] : want) EXPECT_TRUE(torch::equal(t, got.at(name))) << file << " " << name;
  }
  // One update: the average's decay is that of update 2 of the other run, 0.25, not a restart's 0.1.
  auto one = init("dmd2", 1, "init-one", from);
  auto avg0 = load_safetensors(from / "student.safetensors"), raw = load_safetensors(one / "student-raw.safetensors"),
       avg = load_safetensors(one / "student.safetensors");
  for (const auto& [name, t] : avg)
    EXPECT_TRUE(torch::allclose(t, 0.25 * avg0.at(name) + 0.75 * raw.at(name), 1e-5, 1e-6)) << name;
  // The critic: fake score and head as the other run left them (and not the teacher's, nor fresh).
  auto teacher = load_unet(w.teacher);
  auto critic = [&](const fs::path& run, const std::string& module) {
    UNetDenoiser fake(teacher->net->options(), teacher->schedule, teacher->prediction);
    FeatureDiscriminator head(fake.ptr());
    std::map<std::string, torch::nn::Module*> m{{"fake", fake.get()}, {"disc", head.get()}};
    load_checkpoint_weights(run / "stage2" / "checkpoint.pt", m);
    return module == "fake" ? flat(*fake) : flat(*head);
  };
  EXPECT_GT((critic(from, "fake") - flat(*teacher)).abs().max().item<double>(), 1e-6);
  EXPECT_TRUE(torch::allclose(critic(one, "fake"), critic(from, "fake"), 0, 1e-6));
  EXPECT_TRUE(torch::allclose(critic(one, "disc"), critic(from, "disc"), 0, 1e-6));
  // FVGen's head reads the teacher, not the fake score: it is not taken from a dmd2 run but starts
  // as a run without init starts it.
  auto fvgen = init("fvgen", 1, "init-fvgen", from);
  auto plain = w.distill_config("fvgen", 1, 1, ema);
  plain.loop.critic_optim.lr = 1e-10;
  distill_images(plain, w.tmp.path / "init-fvgen-plain", false, "[distill]\n" + ema);
  auto head = [&](const fs::path& run) {
    FeatureDiscriminator h(load_unet(w.teacher).ptr());
    load_checkpoint_weights(run / "stage1" / "checkpoint.pt", {{"disc", h.get()}});
    return flat(*h);
  };
  EXPECT_TRUE(torch::allclose(head(fvgen), head(w.tmp.path / "init-fvgen-plain"), 0, 1e-6));
  EXPECT_GT((head(fvgen) - critic(from, "disc")).abs().max().item<double>(), 1e-5);
  // Folders that are not runs.
  auto refused = [&](const fs::path& source) {
    try {
      init("dmd2", 1, "init-refused", source);
    } catch (const ConfigError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(refused(w.tmp.path / "nowhere").find("not a distill run folder"), std::string::npos);
  fs::create_directories(w.tmp.path / "no-ckpt");
  std::ofstream(w.tmp.path / "no-ckpt" / "config.resolved.toml") << "[distill]\nmethod = \"dmd2\"\n";
  EXPECT_NE(refused(w.tmp.path / "no-ckpt").find("has no checkpoint"), std::string::npos);
}

TEST(ImageDistill, ConfigErrors) {
  auto bad = [](const std::string& toml) {
    try {
      auto root = ConfigNode::from_string(toml, "d.toml");
      read_image_distill_config(root);
      root.finish();
    } catch (const ConfigError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(bad("[distill]\nmethod = \"dmd3\"\n").find("distill.method"), std::string::npos);
  EXPECT_NE(bad("[distill]\nmethod = \"dmd2\"\ngan_weight = 0\n").find("gan_weight"), std::string::npos);
  EXPECT_NE(bad("[distill]\nmethod = \"fvgen\"\ngan_init_steps = 0\n").find("gan_init_steps"), std::string::npos);
  EXPECT_NE(bad("[distill]\nstudent_steps = 2\ntimesteps = [999]\n").find("timesteps"), std::string::npos);
  EXPECT_NE(bad("[distill]\nbatchsize = 2\n").find("batchsize"), std::string::npos);
  EXPECT_NE(bad("[distill]\nregression_weight = -1\n").find("distill.regression_weight"), std::string::npos);
  EXPECT_NE(bad("[distill]\nema = 1\n").find("distill.ema"), std::string::npos);
  EXPECT_NE(bad("[distill]\nlr_half_life = -5\n").find("distill.lr_half_life"), std::string::npos);
  EXPECT_NE(bad("[distill]\ndisc_weight = -1\n").find("distill.disc_weight"), std::string::npos);
}

// The discriminator's weight in the critic update defaults to DMD2's 1e-2 for dmd2 (also when
// --method picks it) and to 1 for the methods whose discriminator reads the frozen teacher.
TEST(ImageDistill, DiscriminatorWeightDefaultsFollowTheMethod) {
  auto weight = [](const std::string& toml, const std::string& method = "") {
    std::vector<std::string> sets;
    if (!method.empty()) sets.push_back("distill.method=" + method);  // the CLI's --method
    auto root = ConfigNode::from_string(toml, "d.toml", sets);
    return read_image_distill_config(root).objective.disc_weight;
  };
  EXPECT_DOUBLE_EQ(weight("[distill]\nmethod = \"dmd2\"\n"), 1e-2);
  EXPECT_DOUBLE_EQ(weight("[distill]\nmethod = \"fvgen\"\n"), 1.0);
  EXPECT_DOUBLE_EQ(weight("[distill]\nmethod = \"fvgen\"\n", "dmd2"), 1e-2);
  EXPECT_DOUBLE_EQ(weight("[distill]\nmethod = \"dmd2\"\ndisc_weight = 0.5\n"), 0.5);
}

}  // namespace
}  // namespace retort
