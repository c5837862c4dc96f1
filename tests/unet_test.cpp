// The image UNet, its save/load, the teacher trainer's resume equivalence, and few-step students.
#include <gtest/gtest.h>

#include "image_test_util.h"
#include "retort/diffusion/parameterization.h"
#include "retort/generators/few_step_student.h"
#include "retort/io/safetensors.h"
#include "retort/distill/gan.h"
#include "retort/models/feature_discriminator.h"
#include "retort/models/unet.h"
#include "retort/train/checkpoint.h"
#include "retort/image/teacher_train.h"

namespace retort {
namespace {

UNetOptions small(int64_t res = 28, int64_t ch = 1) {
  UNetOptions o;
  o.channels = ch;
  o.resolution = res;
  o.widths = {8, 16, 16};
  o.time_dim = 16;
  o.num_classes = 3;
  o.groups = 4;
  o.heads = 2;
  return o;
}

// The zero-initialised output layer makes a fresh UNet output 0; randomise it so tests see signal.
void randomize_output(UNetDenoiser& m) {
  torch::NoGradGuard ng;
  for (auto& p : m->parameters()) p.add_(torch::randn_like(p) * 0.05);
}

TEST(UNet, ShapesForOddAndEvenResolutions) {
  for (auto [res, ch] : {std::pair{28, 1}, {16, 3}, {8, 1}}) {
    UNet net(small(res, ch));
    auto x = torch::randn({2, ch, res, res});
    auto t = torch::tensor({0.3f, 0.9f});
    Cond c = Cond::classes(torch::tensor(std::vector<int64_t>{0, kNullClass}));
    EXPECT_EQ(net->forward(x, t, c).sizes(), x.sizes());
    auto f = net->encode(x, t, c);
    EXPECT_EQ(f.size(1), 16);
    EXPECT_EQ(f.size(2), bottleneck_resolution(res, 3));
  }
}

TEST(UNet, NullClassIsTheUnconditionalBranch) {
  torch::manual_seed(0);
  UNetDenoiser m(small(8), Schedule(), Prediction::Eps);
  randomize_output(m);
  auto x = torch::randn({3, 1, 8, 8});
  auto t = torch::full({3}, 0.5f);
  auto null_a = m->eps(x, t, Cond::classes(torch::full({3}, kNullClass, torch::kInt64)));
  auto null_b = m->eps(x, t, Cond::null(3, torch::kCPU));
  EXPECT_LT(test::max_abs_diff(null_a, null_b), 1e-6);
  auto cond = m->eps(x, t, Cond::classes(torch::tensor({0, 1, 2}, torch::kInt64)));
  EXPECT_GT(test::max_abs_diff(cond, null_a), 1e-4);
  // CFG at scale 1 is the conditional output; at 0 the null one.
  Cond c = Cond::classes(torch::tensor({0, 1, 2}, torch::kInt64));
  EXPECT_LT(test::max_abs_diff(eps_cfg(*m, x, t, c, 1.0), cond), 1e-6);
  EXPECT_LT(test::max_abs_diff(eps_cfg(*m, x, t, c, 0.0), null_a), 1e-5);
}

TEST(UNet, VPredictionGivesExactX0AtTheLastStep) {
  torch::manual_seed(1);
  Schedule s(ScheduleOptions{ScheduleKind::Cosine, 1000, false});
  UNetDenoiser m(small(8), s, Prediction::V);
  randomize_output(m);
  auto x = torch::randn({2, 1, 8, 8});
  auto t = torch::ones({2});
  Cond c = Cond::null(2, torch::kCPU);
  auto v = m->net->forward(x, t, c);
  auto abar = s.alpha_bar(t).to(torch::kFloat32);
  auto expect = per_sample(abar.sqrt(), x) * x - per_sample((1 - abar).sqrt(), x) * v;
  EXPECT_LT(test::max_abs_diff(m->x0(x, t, c), expect), 1e-5);
  EXPECT_TRUE(torch::isfinite(m->eps(x, t, c)).all().item<bool>());
}

TEST(UNet, SafetensorsRoundTripAndStrictShapes) {
  test::TempDir tmp("unet-io");
  torch::manual_seed(2);
  UNetDenoiser m(small(8), Schedule(), Prediction::V);
  randomize_output(m);
  save_unet(tmp.path / "m.safetensors", m);
  auto back = load_unet(tmp.path / "m.safetensors");
  EXPECT_EQ(back->prediction, Prediction::V);
  auto x = torch::randn({2, 1, 8, 8});
  auto t = torch::tensor({0.2f, 0.7f});
  Cond c = Cond::classes(torch::tensor({1, 2}, torch::kInt64));
  EXPECT_LT(test::max_abs_diff(m->eps(x, t, c), back->eps(x, t, c)), 1e-6);
  // A model of another width rejects the file, naming the mismatched tensor.
  auto o = small(8);
  o.widths = {8, 16, 32};
  UNetDenoiser other(o, Schedule(), Prediction::V);
  auto msg = test::io_error([&] { load_module(tmp.path / "m.safetensors", *other); });
  EXPECT_NE(msg.find("shape"), std::string::npos) << msg;
  // Plain safetensors without the architecture metadata is refused by load_unet.
  save_module(tmp.path / "plain.safetensors", *m);
  msg = test::io_error([&] { load_unet(tmp.path / "plain.safetensors"); });
  EXPECT_NE(msg.find("not a retort UNet"), std::string::npos) << msg;
}

TEST(Student, TimestepsAndBackwardSimulation) {
  EXPECT_EQ(default_student_timesteps(4), (std::vector<int64_t>{999, 749, 499, 249}));
  EXPECT_EQ(default_student_timesteps(1), (std::vector<int64_t>{999}));
  EXPECT_EQ(default_student_timesteps(2), (std::vector<int64_t>{999, 499}));
  torch::manual_seed(3);
  UNetDenoiser net(small(8), Schedule(ScheduleOptions{ScheduleKind::Cosine, 1000, false}), Prediction::V);
  randomize_output(net);
  FewStepStudent s(net.ptr(), default_student_timesteps(4));
  Rng rng(0);
  auto g = s->draw(5, rng);
  EXPECT_EQ(g.x0.sizes(), (std::vector<int64_t>{5, 1, 8, 8}));
  EXPECT_TRUE(g.x0.requires_grad());
  EXPECT_EQ(g.cond.labels.size(0), 5);
  auto img = s->sample(torch::tensor({0, 1, 2}, torch::kInt64), rng);
  EXPECT_EQ(img.sizes(), (std::vector<int64_t>{3, 1, 8, 8}));
  EXPECT_LE(img.abs().max().item<float>(), 1.0f);
  EXPECT_THROW(FewStepStudent(net.ptr(), std::vector<int64_t>{499, 999}), ConfigError);
  // Save / load keeps the timesteps; a teacher file loads as "not a student".
  test::TempDir tmp("student-io");
  save_student(tmp.path / "s.safetensors", s);
  auto back = load_student(tmp.path / "s.safetensors");
  ASSERT_TRUE(back);
  EXPECT_EQ(back->timesteps(), s->timesteps());
  save_unet(tmp.path / "t.safetensors", net);
  EXPECT_FALSE(load_student(tmp.path / "t.safetensors"));
}

// ASD's phi as LoRA (issue 22): the copy starts exactly at the teacher, only the adapters and the
// camera map train, and training it leaves the teacher's weights (and its own base) untouched.
TEST(UNet, LoraCopyStartsAtTheTeacherAndTrainsOnlyItsAdapters) {
  torch::manual_seed(8);
  UNetDenoiser teacher(small(8), Schedule(), Prediction::Eps);
  randomize_output(teacher);
  freeze(*teacher);
  auto before = teacher->named_parameters();
  std::map<std::string, torch::Tensor> saved;
  for (const auto& p : before) saved[p.key()] = p.value().clone();
  auto phi = lora_copy(*teacher, UNetLora{}, 12);
  auto x = torch::randn({4, 1, 8, 8});
  auto t = torch::tensor({0.1f, 0.4f, 0.7f, 0.95f});
  Cond c = Cond::classes(torch::tensor(std::vector<int64_t>{0, 1, 2, kNullClass}));
  c.camera = torch::randn({4, 12});
  {
    torch::NoGradGuard ng;
    EXPECT_TRUE(torch::equal(phi->eps(x, t, c), teacher->eps(x, t, c))) << "the LoRA copy starts at the teacher";
  }
  int64_t adapters = 0;
  for (const auto& p : phi->named_parameters()) {
    const bool lora = p.key().find("_lora.") != std::string::npos;
    const bool camera = p.key().rfind("net.camera_proj.", 0) == 0;
    EXPECT_EQ(p.value().requires_grad(), lora || camera) << p.key();
    adapters += lora;
  }
  // 11 residual blocks (3 down, 6 up, 2 middle) x conv1, conv2 x a, b; then qkv and proj x a, b
  EXPECT_EQ(adapters, 11 * 2 * 2 + 2 * 2);
  torch::optim::Adam opt(trainable_parameters(*phi), torch::optim::AdamOptions(1e-2));
  for (int i = 0; i < 3; ++i) {
    opt.zero_grad();
    (phi->eps(x, t, c) - torch::randn_like(x)).pow(2).mean().backward();
    opt.step();
  }
  torch::NoGradGuard ng;
  EXPECT_FALSE(torch::allclose(phi->eps(x, t, c), teacher->eps(x, t, c), 1e-4, 1e-4)) << "the adapters trained";
  auto own = phi->named_parameters();
  for (const auto& [name, value] : saved) {
    EXPECT_TRUE(torch::equal(before[name], value)) << "teacher " << name;
    EXPECT_TRUE(torch::equal(own[name], value)) << "the copy's base " << name;
  }
  // Attention only: adapters on the two projections alone.
  auto attn = lora_copy(*teacher, UNetLora{4, 4.0, {"attention"}}, 0);
  EXPECT_EQ(trainable_parameters(*attn).size(), 4u);
}

TEST(FeatureDiscriminator, HeadOnlyIsTrainableAndGradReachesInput) {
  UNetDenoiser backbone(small(28), Schedule(), Prediction::Eps);
  freeze(*backbone);
  FeatureDiscriminator d(backbone.ptr());
  EXPECT_EQ(trainable_parameters(*d).size(), d->heads->parameters().size());
  auto x = torch::randn({2, 1, 28, 28}, torch::requires_grad());
  auto l = d->logit(x, torch::tensor({0.5f, 0.5f}), Cond::classes(torch::tensor({0, 1}, torch::kInt64)));
  EXPECT_EQ(l.sizes(), (std::vector<int64_t>{2}));
  l.sum().backward();
  EXPECT_GT(x.grad().abs().sum().item<double>(), 0.0);
}

TEST(UNet, EncodeLevelsEndsWithTheBottleneck) {
  torch::manual_seed(2);
  UNet net(small(28));
  auto x = torch::randn({2, 1, 28, 28});
  auto t = torch::tensor({0.3f, 0.7f});
  auto c = Cond::classes(torch::tensor({0, 1}, torch::kInt64));
  auto levels = net->encode_levels(x, t, c);
  ASSERT_EQ(levels.size(), small(28).widths.size() + 1);
  int64_t r = 28;
  for (size_t l = 0; l < small(28).widths.size(); ++l) {
    EXPECT_EQ(levels[l].sizes(), (std::vector<int64_t>{2, small(28).widths[l], r, r})) << l;
    r = (r + 1) / 2;
  }
  EXPECT_TRUE(torch::equal(levels.back(), net->encode(x, t, c)));
}

// The multi-level head: one logit map per encoder level and the bottleneck, each position a part
// of the GAN loss; logit() is the mean of the parts' means.
TEST(FeatureDiscriminator, LevelsHeadClassifiesEveryPosition) {
  torch::manual_seed(3);
  UNetDenoiser backbone(small(28), Schedule(), Prediction::Eps);
  freeze(*backbone);
  FeatureDiscriminator d(backbone.ptr(), DiscFeatures::Levels);
  EXPECT_EQ(trainable_parameters(*d).size(), d->heads->parameters().size());
  EXPECT_EQ(d->heads->size(), small(28).widths.size() + 1);
  auto x = torch::randn({2, 1, 28, 28}, torch::requires_grad());
  auto t = torch::tensor({0.5f, 0.2f});
  auto c = Cond::classes(torch::tensor({0, 1}, torch::kInt64));
  auto parts = d->part_logits(x, t, c);
  ASSERT_EQ(parts.size(), d->heads->size());
  EXPECT_EQ(parts[0].sizes(), (std::vector<int64_t>{2, 28, 28}));
  EXPECT_EQ(parts.back().sizes(), (std::vector<int64_t>{2, 7, 7}));
  auto mean = torch::zeros({2});
  for (auto& p : parts) mean = mean + p.flatten(1).mean(1) / double(parts.size());
  EXPECT_TRUE(torch::allclose(d->logit(x, t, c), mean, 1e-5, 1e-6));
  // The part losses: the mean over levels of each level's mean logistic loss.
  auto y = torch::randn({2, 1, 28, 28});
  auto fake = d->part_logits(y, t, c);
  auto want = torch::zeros({});
  for (size_t i = 0; i < parts.size(); ++i)
    want = want + (torch::log1p(torch::exp(-parts[i])).mean() + torch::log1p(torch::exp(fake[i])).mean()) /
                      double(parts.size());
  auto loss = gan_discriminator_loss(d->part_logits(x, t, c), d->part_logits(y, t, c));
  EXPECT_NEAR(loss.item<double>(), want.item<double>(), 1e-5);
  gan_generator_loss(*d, x, t, c).backward();
  EXPECT_GT(x.grad().abs().sum().item<double>(), 0.0);
}

TEST(TeacherTrain, ResumeReachesTheSameWeights) {
  test::TempDir tmp("teacher-resume");
  test::write_block_dataset(tmp.path, 24, 8, 3);
  auto toml = test::block_data_toml(tmp.path) +
              "[model]\nwidths = [8, 8]\ntime_dim = 16\ngroups = 4\nheads = 1\n"
              "[train]\nsteps = 6\nbatch = 4\ncheckpoint_every = 100\nlog_every = 2\n"
              "[preview]\nsteps = 2\n";
  auto root = ConfigNode::from_string(toml, "tiny.toml");
  auto cfg = read_teacher_config(root);
  const auto text = root.resolved_toml();
  train_teacher(cfg, tmp.path / "a", false, text);
  auto r = train_teacher(cfg, tmp.path / "b", false, text, 4);  // "killed" after 4 steps
  EXPECT_EQ(r.steps, 4);
  EXPECT_FALSE(std::filesystem::exists(tmp.path / "b" / "teacher.safetensors"));
  double stored = -1.0;  // the checkpoint carries the run's seconds, so the continued run counts them
  CheckpointParts seconds_only;
  seconds_only.scalars["seconds"] = &stored;
  Rng unused(0);
  load_checkpoint(tmp.path / "b" / "checkpoint.pt", seconds_only, unused, text);
  EXPECT_GT(stored, 0.0);
  EXPECT_LE(stored, r.seconds);
  EXPECT_GT(train_teacher(cfg, tmp.path / "b", false, text).seconds, stored);
  auto a = load_safetensors(tmp.path / "a" / "teacher.safetensors");
  auto b = load_safetensors(tmp.path / "b" / "teacher.safetensors");
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [name, ta] : a) EXPECT_TRUE(torch::equal(ta, b.at(name))) << name;
  EXPECT_TRUE(std::filesystem::exists(tmp.path / "a" / "loss.png"));
  EXPECT_TRUE(std::filesystem::exists(tmp.path / "a" / "samples.png"));
  // A different config refuses the checkpoint instead of silently mixing runs.
  auto root2 = ConfigNode::from_string(toml + "\n[schedule]\nsteps = 500\n", "tiny2.toml");
  auto cfg2 = read_teacher_config(root2);
  test::io_error([&] { train_teacher(cfg2, tmp.path / "b", false, root2.resolved_toml(), 1); });
  std::ifstream kept(tmp.path / "b" / "config.resolved.toml");
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(kept), {}), text) << "a refused run rewrote the config";
}

// Raising [train] steps and rerunning continues a finished run: the same weights as a run asked
// for the larger number at first. Lowering it below the checkpoint is refused.
TEST(TeacherTrain, RaisingStepsExtendsAFinishedRun) {
  test::TempDir tmp("teacher-extend");
  test::write_block_dataset(tmp.path, 24, 8, 3);
  auto toml = [&](int steps) {
    return test::block_data_toml(tmp.path) +
           "[model]\nwidths = [8, 8]\ntime_dim = 16\ngroups = 4\nheads = 1\n"
           "[train]\nsteps = " + std::to_string(steps) + "\nbatch = 4\ncheckpoint_every = 100\nlog_every = 2\n"
           "[preview]\nsteps = 2\n";
  };
  auto train = [&](int steps, const std::string& dir, const std::string& runtime = "") {
    auto root = ConfigNode::from_string(toml(steps) + runtime, "tiny.toml");
    auto cfg = read_teacher_config(root);
    return train_teacher(cfg, tmp.path / dir, false, root.resolved_toml());
  };
  train(8, "whole");
  train(5, "extended");
  auto r = train(8, "extended");
  EXPECT_EQ(r.steps, 8);
  auto a = load_safetensors(tmp.path / "whole" / "teacher.safetensors");
  auto b = load_safetensors(tmp.path / "extended" / "teacher.safetensors");
  for (const auto& [name, ta] : a) EXPECT_TRUE(torch::equal(ta, b.at(name))) << name;
  // Another thread count continues the run too (bit-identical only at equal thread counts).
  EXPECT_EQ(train(10, "extended", "[runtime]\nthreads = 2\n").steps, 10);
  try {
    train(6, "extended");
    ADD_FAILURE() << "a checkpoint beyond train.steps was accepted";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("beyond train.steps = 6"), std::string::npos) << e.what();
  }
}

TEST(TeacherTrain, ConfigErrorsNameTheKey) {
  auto bad = [](const std::string& toml) {
    try {
      auto root = ConfigNode::from_string(toml, "t.toml");
      read_teacher_config(root);
    } catch (const ConfigError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(bad("[model]\nwidths = [30, 64]\ngroups = 8\n").find("model.groups"), std::string::npos);
  EXPECT_NE(bad("[train]\nstepz = 5\n").find("stepz"), std::string::npos);
  EXPECT_NE(bad("[model]\nprediction = \"score\"\n").find("model.prediction"), std::string::npos);
}

}  // namespace
}  // namespace retort
