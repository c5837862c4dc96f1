// FVGen's student of the video teacher: both stages and every ablation method run on render-scenes
// clips, a stopped run resumes to the weights of an uninterrupted one, and a teacher or data file
// that does not fit is refused before anything is written.
#include <gtest/gtest.h>

#include <fstream>

#include "retort/image/export_command.h"
#include "retort/io/safetensors.h"
#include "retort/nvs/scene_dataset.h"
#include "retort/nvs/video_distill.h"
#include "retort/nvs/video_teacher.h"
#include "nvs_test_util.h"
#include "test_util.h"

namespace retort {
namespace {

namespace fs = std::filesystem;

// Tiny scenes (10 px, 2 frames) and a teacher trained on them for a few steps.
struct TinyNvs {
  test::TempDir tmp{"nvs-distill"};
  fs::path teacher;
  TinyNvs() {
    teacher = test::tiny_nvs_teacher(tmp.path, 10, 2, 2);
  }
  std::string config(const std::string& method, int64_t steps, const std::string& extra = "") const {
    return fmt::format(R"(teacher = "{0}"
[data]
train = "{1}/train.safetensors"
preview = "{1}/test.safetensors"
[distill]
method = "{2}"
student_steps = 2
gan_init_steps = 1
steps = {3}
batch = 2
log_every = 1
checkpoint_every = 1
{4}
[preview]
clips = 1
[runtime]
threads = 1
)", teacher.string(), tmp.path.string(), method, steps, extra);
  }
  FewStepStudent run(const std::string& toml, const fs::path& out) const {
    auto root = ConfigNode::from_string(toml, "d.toml");
    return distill_nvs(read_nvs_distill_config(root), out, false, root.resolved_toml());
  }
};

TEST(NvsDistill, FvgenRunsBothStagesAndResumesToTheSameWeights) {
  TinyNvs w;
  auto a = w.run(w.config("fvgen", 2), w.tmp.path / "a");
  for (const char* f : {"stage1/checkpoint.pt", "stage2/checkpoint.pt", "stage2/loss.png", "student.safetensors",
                        "samples.png"})
    EXPECT_TRUE(fs::exists(w.tmp.path / "a" / f)) << f;
  EXPECT_EQ(a->timesteps(), (std::vector<int64_t>{999, 499}));
  // Stopped after stage 2's first update, then continued: the same student.
  w.run(w.config("fvgen", 1), w.tmp.path / "b");
  w.run(w.config("fvgen", 2), w.tmp.path / "b");
  auto wa = load_safetensors(w.tmp.path / "a" / "student.safetensors");
  auto wb = load_safetensors(w.tmp.path / "b" / "student.safetensors");
  ASSERT_EQ(wa.size(), wb.size());
  for (const auto& [name, t] : wa) EXPECT_TRUE(torch::equal(t, wb.at(name))) << name;
  // The student's clips follow the teacher's shape: [n, K frames, 3, R, R].
  auto data = load_scene_dataset(w.tmp.path / "test.safetensors");
  Rng rng(0);
  auto clip = a->sample(Cond::concatenated(nvs_condition(data, torch::arange(2), true)), 2, rng);
  EXPECT_EQ(clip.sizes(), (std::vector<int64_t>{2, 2, 3, 10, 10}));
}

// A TorchScript video teacher (the tiny teacher's export, issue 21) distils like the native one:
// FVGen's GAN head reads its exported features and the student comes out as TorchScript. The fake
// score as LoRA adapters (issue 22) runs on the native teacher.
TEST(NvsDistill, TorchScriptTeacherAndLoraFake) {
  TinyNvs w;
  const auto exported = w.tmp.path / "teacher.pt";
  export_torchscript(w.teacher, exported);
  auto toml = w.config("fvgen", 2);
  toml.replace(toml.find(w.teacher.string()), w.teacher.string().size(), exported.string());
  auto s = w.run(toml, w.tmp.path / "ts");
  EXPECT_TRUE(fs::exists(w.tmp.path / "ts" / "student.pt"));
  auto data = load_scene_dataset(w.tmp.path / "test.safetensors");
  Rng rng(0);
  auto clip = s->sample(Cond::concatenated(nvs_condition(data, torch::arange(2), true)), 2, rng);
  EXPECT_EQ(clip.sizes(), (std::vector<int64_t>{2, 2, 3, 10, 10}));
  w.run(w.config("dmd2", 2, "fake = \"lora\""), w.tmp.path / "lora");
  EXPECT_TRUE(fs::exists(w.tmp.path / "lora" / "student.safetensors"));
}

// [distill] r1_weight: the approximate R1 penalty's perturbation is drawn from the run's stream, so
// both stages log the penalty and the discriminator's separation, and a stopped run still resumes to
// the weights of an uninterrupted one.
TEST(NvsDistill, R1PenaltyIsLoggedAndResumesToTheSameWeights) {
  TinyNvs w;
  const std::string r1 = "r1_weight = 10\nr1_sigma = 0.1\n";
  w.run(w.config("fvgen", 2, r1), w.tmp.path / "a");
  for (const char* stage : {"stage1", "stage2"}) {
    std::ifstream csv(w.tmp.path / "a" / stage / "metrics.csv");
    std::string header;
    std::getline(csv, header);
    for (const char* column : {"r1", "disc_accuracy", "logit_real", "logit_fake"})
      EXPECT_NE(header.find(column), std::string::npos) << stage << ": " << header;
  }
  w.run(w.config("fvgen", 1, r1), w.tmp.path / "b");
  w.run(w.config("fvgen", 2, r1), w.tmp.path / "b");
  auto wa = load_safetensors(w.tmp.path / "a" / "student.safetensors");
  auto wb = load_safetensors(w.tmp.path / "b" / "student.safetensors");
  ASSERT_EQ(wa.size(), wb.size());
  for (const auto& [name, t] : wa) EXPECT_TRUE(torch::equal(t, wb.at(name))) << name;
  // Without the penalty the stream is drawn differently, so the student differs: the option acts.
  w.run(w.config("fvgen", 2), w.tmp.path / "plain");
  auto plain = load_safetensors(w.tmp.path / "plain" / "student.safetensors");
  bool differs = false;
  for (const auto& [name, t] : wa) differs = differs || !torch::equal(t, plain.at(name));
  EXPECT_TRUE(differs);
}

TEST(NvsDistill, EveryAblationMethodRuns) {
  TinyNvs w;
  for (const std::string m : {"gan", "rkl", "softened_rkl", "dmd", "dmd2"}) {
    w.run(w.config(m, 1), w.tmp.path / m);
    EXPECT_TRUE(fs::exists(w.tmp.path / m / "student.safetensors")) << m;
  }
}

// [distill] gan_init_lr is stage 1's generator rate: at 1e-12 the GAN stage leaves the student at
// the teacher's weights, at the stage-2 rate (1e-2) it moves them.
TEST(NvsDistill, GanInitLrIsStageOnesGeneratorRate) {
  TinyNvs w;
  auto moved = [&](const std::string& name, const std::string& extra) {
    // gan: stage 1 runs gan_init_steps (1) + steps (1) updates.
    w.run(w.config("gan", 1, "lr = 1e-2\nweight_decay = 0\n" + extra), w.tmp.path / name);
    auto teacher = load_safetensors(w.teacher);
    double most = 0;
    for (const auto& [key, t] : load_safetensors(w.tmp.path / name / "student.safetensors"))
      most = std::max(most, (t - teacher.at(key)).abs().max().item<double>());
    return most;
  };
  EXPECT_LT(moved("slow", "gan_init_lr = 1e-12"), 1e-9);
  EXPECT_GT(moved("fast", ""), 1e-3);
}

TEST(NvsDistill, ATeacherOrDataThatDoesNotFitIsRefusedBeforeWriting) {
  TinyNvs w;
  auto refused = [&](const std::string& toml) {
    return test::error_of<ConfigError>([&] { w.run(toml, w.tmp.path / "refused"); });
  };
  // An image teacher (no frames, no condition channels).
  UNetOptions o;
  o.channels = 3;
  o.resolution = 10;
  o.widths = {8};
  o.groups = 4;
  o.time_dim = 8;
  UNetDenoiser image(o, Schedule(ScheduleOptions{}), Prediction::V);
  save_unet(w.tmp.path / "image.safetensors", image);
  auto toml = w.config("fvgen", 1);
  auto other = toml;
  other.replace(other.find(w.teacher.string()), w.teacher.string().size(), (w.tmp.path / "image.safetensors").string());
  EXPECT_NE(refused(other).find("not a novel-view video teacher"), std::string::npos);
  // Clips of another length than the teacher's.
  SceneDatasetOptions s;
  s.train = 2;
  s.resolution = 10;
  s.frames = 3;
  s.supersample = false;
  render_scene_dataset(s, "train", w.tmp.path / "three.safetensors", false);
  other = toml;
  other.replace(other.find(w.tmp.path.string() + "/train.safetensors"), (w.tmp.path.string() + "/train.safetensors").size(),
                (w.tmp.path / "three.safetensors").string());
  EXPECT_NE(refused(other).find("3 frames at 10 px"), std::string::npos);
  EXPECT_NE(refused(w.config("fvgen", 1, "regression_weight = 0.25")).find("regression_weight"), std::string::npos);
  EXPECT_NE(refused(w.config("fvgenn", 1)).find("fvgenn"), std::string::npos);
  EXPECT_FALSE(fs::exists(w.tmp.path / "refused"));
}

}  // namespace
}  // namespace retort
