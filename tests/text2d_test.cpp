// Score distillation in 2-D (issue 22): image particles as a generator, prompt labels, the phi
// variants, ASD's Eq. 5 (real data and eta) against Eq. 6, generate2d's resume and config errors.
// The CLI run of generate2d and bench-2d on the shipped teacher is ctest cli.text2d.
#include <gtest/gtest.h>

#include <set>

#include "image_test_util.h"
#include "retort/core/error.h"
#include "retort/distill/objective.h"
#include "retort/io/safetensors.h"
#include "retort/models/fake_score.h"
#include "retort/models/unet.h"
#include "retort/render/prompt.h"
#include "retort/text2d/bench2d.h"
#include "retort/text2d/generate2d.h"
#include "retort/text2d/image_particles.h"
#include "test_util.h"

namespace retort {
namespace {
namespace fs = std::filesystem;
using test::max_abs_diff;

// A tiny class-conditional teacher over 8x8 grey images (3 classes, the bar data set's).
UNetDenoiser tiny_teacher() {
  UNetOptions o;
  o.channels = 1;
  o.resolution = 8;
  o.widths = {8, 16};
  o.time_dim = 16;
  o.groups = 4;
  o.heads = 0;
  o.num_classes = 3;
  UNetDenoiser u(o, Schedule(ScheduleOptions{}), Prediction::Eps);
  torch::NoGradGuard ng;  // the output layer starts at zero; make every output depend on the input
  for (auto& p : u->parameters()) p.normal_(0, 0.3);
  return u;
}

// phi of each variant, as generate2d builds it.
std::shared_ptr<Denoiser> make_phi(const std::string& kind, UNetDenoiser& teacher, const std::vector<int64_t>& classes) {
  if (kind == "embedding") return ClassEmbeddingFake(teacher.ptr(), classes).ptr();
  if (kind == "lora") return lora_copy(*teacher, UNetLora{}).ptr();
  return teacher->copy();
}

TEST(Text2d, PromptLabels) {
  EXPECT_EQ(prompt_labels("sneaker", 10, 3), (std::vector<int64_t>{7, 7, 7}));
  EXPECT_EQ(prompt_labels("Ankle Boot", 10, 1), (std::vector<int64_t>{9}));
  EXPECT_EQ(prompt_labels("2", 3, 2), (std::vector<int64_t>{2, 2}));
  const auto torus = parse_prompt("a red torus");
  EXPECT_EQ(prompt_labels("a red torus, side view", kNumPromptClasses, 2),
            (std::vector<int64_t>(2, prompt_class(torus.shape, torus.colour, View::side))));
  auto spread = prompt_labels("a red torus", kNumPromptClasses, 5);  // the views in turn
  EXPECT_EQ(spread[0], prompt_class(torus.shape, torus.colour, View::front));
  EXPECT_EQ(spread[3], prompt_class(torus.shape, torus.colour, View::overhead));
  EXPECT_EQ(spread[4], spread[0]);
  EXPECT_NE(test::error_of<ConfigError>([] { prompt_labels("3", 3, 1); }).find("0..2"), std::string::npos);
  EXPECT_NE(test::error_of<ConfigError>([] { prompt_labels("a red torus", 10, 1); }).find("sneaker"),
            std::string::npos);
  EXPECT_NE(test::error_of<ConfigError>([] { prompt_labels("sneaker", kNumPromptClasses, 1); }).find("world teacher"),
            std::string::npos);
  EXPECT_EQ(prompt_problem("a red torus"), "");
  EXPECT_NE(prompt_problem("a red pyramid").find("pyramid"), std::string::npos);
  EXPECT_EQ(prompt_slug("a red torus, front view"), "red-torus-front-view");
  EXPECT_EQ(prompt_slug("ankle boot"), "ankle-boot");
}

TEST(Text2d, ParticlesReceiveGradientsFromEachMethod) {
  torch::manual_seed(0);
  auto teacher = tiny_teacher();
  freeze(*teacher);
  teacher->eval();
  for (const std::string method : {"sds", "vsd", "asd"}) {
    Rng rng(1);
    ImageParticles gen(torch::tensor({0, 0, 0, 2, 2, 2}, torch::kInt64), 1, 8, 1.0, rng);
    auto g = gen->draw(4, rng);  // a subset: 4 distinct particles of 6
    ASSERT_EQ(g.x0.size(0), 4);
    auto phi = make_phi("lora", teacher, {0, 2});
    ObjectiveOptions o = generate2d_objective_defaults();
    auto obj = make_objective(method, o, teacher->schedule);
    NoiseDraw n{torch::full({4}, 0.5), rng.randn(g.x0.sizes())};
    Models m{teacher.get(), phi.get(), nullptr};
    obj->generator_loss(g.x0, g.cond, n, m).backward();
    ASSERT_TRUE(gen->particles.grad().defined()) << method;
    auto per = gen->particles.grad().flatten(1).abs().sum(1);
    EXPECT_EQ((per > 0).sum().item<int64_t>(), 4) << method;  // exactly the drawn particles
    // Drawn labels follow the particles.
    for (int64_t i = 0; i < 4; ++i) EXPECT_TRUE(g.cond.labels[i].item<int64_t>() == 0 || g.cond.labels[i].item<int64_t>() == 2);
  }
  // A batch of at least N draws every particle in order.
  Rng rng(2);
  ImageParticles gen(torch::tensor({1, 2}, torch::kInt64), 1, 8, 0.5, rng);
  auto all = gen->draw(5, rng);
  EXPECT_TRUE(torch::equal(all.x0, gen->particles));
  EXPECT_TRUE(torch::equal(all.cond.labels, torch::tensor({1, 2}, torch::kInt64)));
}

TEST(Text2d, PhiVariantsStartAtTheTeacherAndTrain) {
  torch::manual_seed(0);
  auto teacher = tiny_teacher();
  freeze(*teacher);
  teacher->eval();
  auto x = torch::randn({4, 1, 8, 8});
  auto t = torch::full({4}, 0.4);
  auto cond = Cond::classes(torch::tensor({0, 2, 2, 0}, torch::kInt64));
  auto ref = teacher->eps(x, t, cond);
  EXPECT_GT(ref.abs().mean().item<double>(), 1e-3);
  for (const std::string kind : {"embedding", "lora", "copy"}) {
    auto phi = make_phi(kind, teacher, {0, 2});
    EXPECT_LT(max_abs_diff(phi->eps(x, t, cond), ref), 1e-5) << kind;
    EXPECT_FALSE(trainable_parameters(*phi).empty()) << kind;
  }
}

// Eq. 5 adds -||eps_phi(x_t^r) - eps||^2 + eta ||eps_y(x_t^r) - eps_phi(x_t^r)||^2 to Eq. 6: the
// phi gradient changes with it, grows with eta, and the loss refuses a batch without real samples.
TEST(Text2d, Eq5RealDataTermChangesThePhiUpdate) {
  torch::manual_seed(0);
  auto teacher = tiny_teacher();
  freeze(*teacher);
  teacher->eval();
  Rng rng(3);
  CriticBatch b;
  b.x0 = rng.randn({4, 1, 8, 8});
  b.cond = Cond::classes(torch::tensor({0, 0, 2, 2}, torch::kInt64));
  b.noise = {torch::full({4}, 0.5), rng.randn({4, 1, 8, 8})};
  b.real_x0 = rng.randn({4, 1, 8, 8}).tanh();
  b.real_cond = b.cond;
  b.real_noise = {torch::full({4}, 0.3), rng.randn({4, 1, 8, 8})};
  auto grad_of = [&](bool real, double eta, bool phi_moved) {
    torch::manual_seed(1);
    auto phi = make_phi("lora", teacher, {0, 2});
    if (phi_moved) {  // phi away from the teacher, as after training, so the eta term is not zero
      torch::NoGradGuard ng;
      for (auto& p : trainable_parameters(*phi)) p.add_(torch::randn_like(p) * 0.1);
    }
    ObjectiveOptions o = generate2d_objective_defaults();
    o.asd_real = real;
    o.eta = eta;
    auto obj = make_objective("asd", o, teacher->schedule);
    EXPECT_EQ(obj->needs().real, real);
    Models m{teacher.get(), phi.get(), nullptr};
    obj->critic_loss(b, m).backward();
    std::vector<torch::Tensor> g;
    for (auto& p : trainable_parameters(*phi)) g.push_back(p.grad().flatten());
    return torch::cat(g);
  };
  auto eq6 = grad_of(false, 0.5, true), eq5 = grad_of(true, 0.5, true), eq5_eta = grad_of(true, 2.0, true);
  EXPECT_GT(max_abs_diff(eq5, eq6), 1e-6 * (1 + eq6.abs().max().item<double>()));
  EXPECT_GT(max_abs_diff(eq5_eta, eq5), 1e-7);
  // The loss itself: Eq. 5 = Eq. 6 - ||eps_phi(x_t^r) - eps||^2 + eta ||eps_y(x_t^r) - eps_phi(x_t^r)||^2
  // with x_t^r = alpha_t x^r + sigma_t eps (means over elements), computed here by hand.
  {
    torch::manual_seed(1);
    auto phi = make_phi("copy", teacher, {0, 2});
    Models m{teacher.get(), phi.get(), nullptr};
    ObjectiveOptions o = generate2d_objective_defaults();
    o.eta = 0.7;
    const double l6 = make_objective("asd", o, teacher->schedule)->critic_loss(b, m).item<double>();
    o.asd_real = true;
    const double l5 = make_objective("asd", o, teacher->schedule)->critic_loss(b, m).item<double>();
    auto abar = teacher->schedule.alpha_bar(b.real_noise.t).view({-1, 1, 1, 1});
    auto xr = abar.sqrt() * b.real_x0 + (1 - abar).sqrt() * b.real_noise.eps;
    auto e_phi = phi->eps(xr, b.real_noise.t, b.real_cond);
    auto e_y = teacher->eps(xr, b.real_noise.t, b.real_cond);
    const double real_term = (-(e_phi - b.real_noise.eps).pow(2).mean() + 0.7 * (e_y - e_phi).pow(2).mean()).item<double>();
    EXPECT_NEAR(l5 - l6, real_term, 1e-5);
    EXPECT_GT(std::abs(real_term), 1e-3);
  }
  // Without real samples in the batch Eq. 5 is an error, not Eq. 6 in disguise.
  b.real_x0 = torch::Tensor();
  auto phi = make_phi("lora", teacher, {0, 2});
  ObjectiveOptions o = generate2d_objective_defaults();
  o.asd_real = true;
  auto obj = make_objective("asd", o, teacher->schedule);
  Models m{teacher.get(), phi.get(), nullptr};
  EXPECT_THROW(obj->critic_loss(b, m), Error);
}

std::string config_error(const std::string& toml) {
  try {
    auto root = ConfigNode::from_string(toml, "g.toml");
    read_generate2d_config(root);
    root.finish();
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

TEST(Text2d, ConfigErrorsNameTheKey) {
  EXPECT_EQ(config_error(""), "no error");
  EXPECT_NE(config_error("[generate2d]\nmethod = \"dmd\"\n").find("generate2d.method"), std::string::npos);
  EXPECT_NE(config_error("[generate2d]\nfake = \"delta\"\n").find("generate2d.fake"), std::string::npos);
  EXPECT_NE(config_error("[generate2d]\nparticles = 0\n").find("generate2d.particles"), std::string::npos);
  EXPECT_NE(config_error("prompts = []\n").find("prompts"), std::string::npos);
  EXPECT_NE(config_error("prompts = [\"a red pyramid\"]\n").find("pyramid"), std::string::npos);
  EXPECT_NE(config_error("[generate2d]\nparticels = 4\n").find("particels"), std::string::npos);
  // Eq. 5 needs real images: refused without [data], and for a method other than ASD.
  auto no_data = config_error("[generate2d]\nasd_real = true\n");
  EXPECT_NE(no_data.find("generate2d.asd_real"), std::string::npos) << no_data;
  EXPECT_NE(no_data.find("[data]"), std::string::npos) << no_data;
  auto with_data = "[generate2d]\nasd_real = true\n[data]\nsource = \"fashion-mnist\"\nresolution = 16\n";
  EXPECT_EQ(config_error(with_data), "no error");
  EXPECT_NE(config_error("[generate2d]\nmethod = \"vsd\"\nasd_real = true\n[data]\nresolution = 16\n").find("ASD"),
            std::string::npos);
  // Presets: DreamFusion's lambda for SDS, a smaller critic rate for a whole copy; a given value wins.
  auto read = [](const std::string& toml) {
    auto root = ConfigNode::from_string(toml, "g.toml");
    return read_generate2d_config(root);
  };
  EXPECT_DOUBLE_EQ(read("[generate2d]\nmethod = \"sds\"\n").objective.cfg_scale, 100.0);
  EXPECT_DOUBLE_EQ(read("[generate2d]\nmethod = \"sds\"\ncfg_scale = 7.5\n").objective.cfg_scale, 7.5);
  EXPECT_DOUBLE_EQ(read("[generate2d]\nfake = \"copy\"\n").loop.critic_optim.lr, 1e-4);
  EXPECT_DOUBLE_EQ(read("").objective.gamma, -1.0);
}

struct TinyRun {
  test::TempDir tmp{"text2d"};
  fs::path teacher = tmp.path / "teacher.safetensors";
  TinyRun() {
    torch::manual_seed(0);
    auto t = tiny_teacher();
    save_unet(teacher, t);
    fs::create_directories(tmp.path / "data");
    test::write_bar_dataset(tmp.path / "data", 60);
  }
  std::string toml(const std::string& generate2d_keys) const {
    return "teacher = \"" + teacher.string() + "\"\nprompts = [\"0\", \"2\"]\n[generate2d]\nparticles = 3\nbatch = 4\n"
           "log_every = 1\ncheckpoint_every = 1\n" + generate2d_keys + test::block_data_toml(tmp.path / "data");
  }
  Generate2dConfig config(const std::string& keys) const {
    auto root = ConfigNode::from_string(toml(keys), "t.toml");
    auto c = read_generate2d_config(root);
    root.finish();
    return c;
  }
};

// A stopped (after its checkpoint) and continued run ends with the particles of an uninterrupted
// one, for each phi and for Eq. 5, whose real-data draws come from the same stream. Stopping is
// modelled by a shorter `steps`, so the time range must not depend on it (anneal = "none"); the CLI
// test cli.text2d kills a run with the default linear anneal (-9) and compares the files.
TEST(Text2d, ResumedRunEndsWithTheSameParticles) {
  TinyRun w;
  for (const std::string keys : {"method = \"asd\"\nfake = \"lora\"\nasd_real = true\n",
                                 "method = \"vsd\"\nfake = \"embedding\"\n", "method = \"asd\"\nfake = \"copy\"\n"}) {
    auto cfg = w.config(keys + "steps = 4\nanneal = \"none\"\n");
    const auto a = w.tmp.path / "a", b = w.tmp.path / "b";
    fs::remove_all(a);
    fs::remove_all(b);
    auto full = run_generate2d(cfg, a, false, "same run");
    for (const char* f : {"particles.safetensors", "particles.png", "loss.png", "metrics.csv", "checkpoint.pt"})
      EXPECT_TRUE(fs::exists(a / f)) << f;
    auto stopped = cfg;
    stopped.loop.steps = 2;
    auto half = run_generate2d(stopped, b, false, "same run");
    auto resumed = run_generate2d(cfg, b, false, "same run");
    EXPECT_EQ(resumed.iterations, 4);
    EXPECT_TRUE(torch::equal(full.images, resumed.images)) << keys;
    EXPECT_FALSE(torch::equal(full.images, half.images)) << "two more updates changed nothing: " << keys;
    auto file = load_safetensors(a / "particles.safetensors");
    EXPECT_EQ(file.at("images").sizes(), (std::vector<int64_t>{6, 1, 8, 8}));
    EXPECT_TRUE(torch::equal(file.at("labels"), torch::tensor({0, 0, 0, 2, 2, 2}, torch::kInt64)));
  }
}

// Eq. 5 trains phi on real images too, so the particles of an Eq. 5 run differ from Eq. 6's; a
// data set without a prompt's class, or a teacher without the phi's layers, is refused before the
// run folder is made.
TEST(Text2d, Eq5RunDiffersAndIsRefusedWithoutRealImagesOfTheClass) {
  TinyRun w;
  auto eq6 = run_generate2d(w.config("steps = 3\n"), w.tmp.path / "eq6", false, "eq6");
  auto eq5 = run_generate2d(w.config("steps = 3\nasd_real = true\n"), w.tmp.path / "eq5", false, "eq5");
  EXPECT_GT(max_abs_diff(eq5.images, eq6.images), 1e-6);
  auto fewer = w.tmp.path / "two";
  fs::create_directories(fewer);
  test::write_block_dataset(fewer, 20, 8, 2);  // classes 0 and 1 only: no image of class 2
  auto cfg = w.config("steps = 3\nasd_real = true\n");
  cfg.data->train_images = fewer / "images.idx";
  cfg.data->train_labels = fewer / "labels.idx";
  auto msg = test::error_of<ConfigError>([&] { run_generate2d(cfg, w.tmp.path / "refused", false, "r"); });
  EXPECT_NE(msg.find("class 2"), std::string::npos) << msg;
  EXPECT_FALSE(fs::exists(w.tmp.path / "refused"));
}

}  // namespace
}  // namespace retort
