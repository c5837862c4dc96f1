// A user's TorchScript model as a teacher (models/torchscript_model.h) and retort's models out to
// TorchScript (models/torchscript_export.h): the contract is checked with a message naming what is
// wrong, the scripted weights are the ones retort trains and saves, copies are independent, and
// the exported UNet and student chain give the C++ model's outputs.
#include <fmt/format.h>

#include <fstream>
#include <gtest/gtest.h>

#include "conv_test_util.h"
#include "image_test_util.h"
#include "retort/core/error.h"
#include "retort/generators/few_step_student.h"
#include "retort/image/image_distill.h"
#include "retort/image/export_command.h"
#include "retort/models/torchscript_export.h"
#include "retort/models/torchscript_model.h"
#include "retort/io/safetensors.h"
#include "retort/text3d/generate3d.h"
#include "retort/nvs/video_model.h"
#include "retort/bench/gmm_bench.h"
#include "retort/bench/gmm_config.h"
#include "retort/models/gaussian_mixture.h"

namespace retort {
namespace {

namespace fs = std::filesystem;

const char* kContract =
    R"({"prediction": "eps", "time": "discrete", "schedule": "linear", "schedule_steps": 1000, "channels": 1,
        "resolution": 4, "num_classes": 3})";

// eps = w * x + b * t / 1000 + 0.01 * cond: every input reaches the output.
const char* kForward = R"(
def forward(self, x: Tensor, t: Tensor, cond: Tensor) -> Tensor:
    return x * self.w + self.b * (t.float() / 1000.0).view(-1, 1, 1, 1) + 0.01 * cond.float().view(-1, 1, 1, 1)
)";

fs::path write_module(const fs::path& path, const std::string& source, const std::string& contract,
                      bool with_contract = true) {
  torch::jit::Module m("Toy");
  m.register_parameter("w", torch::full({1}, 0.5), false);
  m.register_parameter("b", torch::full({1}, 2.0), false);
  m.define(source);
  torch::jit::ExtraFilesMap extra;
  if (with_contract) extra["retort.json"] = contract;
  m.save(path.string(), extra);
  return path;
}

// The IoError message of loading `path` ("" when it loads).
std::string load_error(const fs::path& path) {
  try {
    load_torchscript_model(path);
  } catch (const IoError& e) {
    return e.what();
  }
  return "";
}

TEST(TorchScriptModel, CallsTheMethodWithTheContractsTimeAndNullClass) {
  test::TempDir tmp("ts-call");
  auto m = load_torchscript_model(write_module(tmp.path / "toy.pt", kForward, kContract));
  auto x = torch::randn({2, 1, 4, 4});
  auto t = torch::tensor({0.5f, 1.0f});  // discrete steps 499 and 999
  auto y = m->predict(x, t, Cond::classes(torch::tensor(std::vector<int64_t>{1, kNullClass})));
  auto want = x * 0.5 + 2.0 * torch::tensor({0.499f, 0.999f}).view({-1, 1, 1, 1}) +
              0.01 * torch::tensor({1.0f, 3.0f}).view({-1, 1, 1, 1});  // null class -> num_classes
  EXPECT_TRUE(torch::allclose(y, want, 1e-6, 1e-6));
  EXPECT_EQ(m->shape().batch(5), (std::vector<int64_t>{5, 1, 4, 4}));
  // eps -> x0 through the schedule, as for the UNet.
  auto abar = m->schedule.alpha_bar(t).view({-1, 1, 1, 1});
  EXPECT_TRUE(torch::allclose(m->x0(x, t, Cond::classes(torch::tensor(std::vector<int64_t>{1, kNullClass}))),
                              (x - (1 - abar).sqrt() * y) / abar.sqrt(), 1e-5, 1e-5));
}

TEST(TorchScriptModel, TrainsTheScriptedWeightsAndCopiesAreIndependent) {
  test::TempDir tmp("ts-weights");
  auto m = load_torchscript_model(write_module(tmp.path / "toy.pt", kForward, kContract));
  auto names = m->named_parameters().keys();
  EXPECT_EQ(names, (std::vector<std::string>{"script.w", "script.b"}));
  auto x = torch::ones({1, 1, 4, 4});
  auto t = torch::tensor({0.001f});  // step 0
  auto c = Cond::classes(torch::tensor(std::vector<int64_t>{0}));
  {
    torch::NoGradGuard ng;
    m->named_parameters()["script.w"].fill_(3.0);  // retort's view of the parameter is the module's
  }
  EXPECT_NEAR(m->predict(x, t, c).mean().item<double>(), 3.0, 1e-6);
  auto copy = std::dynamic_pointer_cast<TorchScriptModelImpl>(m->copy());
  ASSERT_TRUE(copy);
  EXPECT_TRUE(copy->is_training());
  for (const auto& p : copy->parameters()) EXPECT_TRUE(p.requires_grad());
  auto loss = copy->predict(x, t, c).sum();
  loss.backward();
  EXPECT_NEAR(copy->named_parameters()["script.w"].grad().item<double>(), 16.0, 1e-5);  // d/dw sum(w x)
  {
    torch::NoGradGuard ng;
    copy->named_parameters()["script.w"].fill_(-1.0);
  }
  EXPECT_NEAR(m->predict(x, t, c).mean().item<double>(), 3.0, 1e-6) << "the copy shares the teacher's weights";
  // save -> load keeps the trained weights, the contract and the metadata.
  copy->save(tmp.path / "copy.pt", {{"retort.student", R"({"timesteps": [999]})"}});
  std::map<std::string, std::string> meta;
  auto back = load_torchscript_model(tmp.path / "copy.pt", torch::kCPU, &meta);
  EXPECT_NEAR(back->named_parameters()["script.w"].item<double>(), -1.0, 1e-7);
  EXPECT_EQ(meta.at("retort.student"), R"({"timesteps": [999]})");
  EXPECT_EQ(back->contract().num_classes, 3);
}

TEST(TorchScriptModel, BadArchivesAreNamedWithWhatIsWrong) {
  test::TempDir tmp("ts-bad");
  {
    std::ofstream(tmp.path / "text.pt") << "not a zip archive";
  }
  EXPECT_NE(load_error(tmp.path / "text.pt").find("not a TorchScript archive"), std::string::npos);
  EXPECT_NE(load_error(write_module(tmp.path / "bare.pt", kForward, "", false)).find("no extra file 'retort.json'"),
            std::string::npos);
  const std::string no_prediction =
      R"({"time": "discrete", "schedule": "linear", "schedule_steps": 1000, "channels": 1, "resolution": 4, "num_classes": 3})";
  EXPECT_NE(load_error(write_module(tmp.path / "np.pt", kForward, no_prediction)).find("retort.json: no 'prediction'"),
            std::string::npos);
  auto bad_value = std::string(kContract);
  bad_value.replace(bad_value.find("\"discrete\""), 10, "\"seconds\"");
  EXPECT_NE(load_error(write_module(tmp.path / "bv.pt", kForward, bad_value)).find("time = \"seconds\""),
            std::string::npos);
  auto other = std::string(kContract);
  other.insert(other.size() - 1, R"(, "method": "denoise")");
  auto msg = load_error(write_module(tmp.path / "nm.pt", kForward, other));
  EXPECT_NE(msg.find("no method 'denoise' (it has: forward"), std::string::npos) << msg;
  msg = load_error(write_module(tmp.path / "sig.pt", "def forward(self, x: Tensor, t: Tensor) -> Tensor:\n  return x\n",
                                kContract));
  EXPECT_NE(msg.find("method 'forward' is forward(x: Tensor, t: Tensor) -> Tensor"), std::string::npos) << msg;
  msg = load_error(write_module(tmp.path / "shape.pt",
                                "def forward(self, x: Tensor, t: Tensor, cond: Tensor) -> Tensor:\n  return x.sum(1)\n",
                                kContract));
  EXPECT_NE(msg.find("returned a Float [2,4,4] tensor on cpu; expected float32 [2,1,4,4]"), std::string::npos) << msg;
  msg = load_error(write_module(tmp.path / "throws.pt",
                                "def forward(self, x: Tensor, t: Tensor, cond: Tensor) -> Tensor:\n  return x.view(-1, 7)\n",
                                kContract));
  EXPECT_NE(msg.find("the probe call forward(x_t [2,1,4,4], t int64 [2], cond int64 [2]) failed"), std::string::npos)
      << msg;
  // A model that answers on another device (here the meta device; a CUDA-only module on a CPU run
  // alike) is refused by the probe, naming both devices.
  msg = load_error(write_module(tmp.path / "device.pt",
                                "def forward(self, x: Tensor, t: Tensor, cond: Tensor) -> Tensor:\n  return x.to(\"meta\")\n",
                                kContract));
  EXPECT_NE(msg.find("tensor on meta; expected float32 [2,1,4,4] on cpu"), std::string::npos) << msg;
  // A GAN head needs features the toy does not have: refused when asked for, with the reason.
  auto m = load_torchscript_model(write_module(tmp.path / "ok.pt", kForward, kContract));
  try {
    m->encode_levels(torch::zeros({1, 1, 4, 4}), torch::tensor({0.5f}), Cond{});
    FAIL() << "encode_levels of a model without features";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("names no 'features' method"), std::string::npos) << e.what();
  }
}

// A config's [torchscript] table takes the place of a missing (or another) retort.json; its keys are
// required and checked like any config key's.
TEST(TorchScriptModel, TheConfigsContractReplacesRetortJson) {
  test::TempDir tmp("ts-config");
  auto bare = write_module(tmp.path / "bare.pt", kForward, "", false);
  auto root = ConfigNode::from_string(
      "[torchscript]\nprediction = \"x0\"\ntime = \"discrete\"\nschedule = \"cosine\"\nschedule_steps = 500\n"
      "channels = 1\nresolution = 4\nnum_classes = 3\n",
      "distill.toml");
  auto n = root.table("torchscript");
  const auto c = read_script_contract(n);
  auto m = load_diffusion_model(bare, nullptr, &c);
  EXPECT_EQ(m->prediction, Prediction::X0);
  EXPECT_EQ(m->schedule.options().steps, 500);
  EXPECT_EQ(m->shape().num_classes, 3);
  auto missing = ConfigNode::from_string("[torchscript]\ntime = \"discrete\"\n", "distill.toml");
  auto mn = missing.table("torchscript");
  try {
    read_script_contract(mn);
    FAIL() << "a contract without its prediction";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("torchscript.prediction: missing"), std::string::npos) << e.what();
  }
  auto bad = ConfigNode::from_string("[torchscript]\nprediction = \"v\"\ntime = \"discrete\"\nschedule = \"linear\"\n"
                                     "schedule_steps = 1000\nchannels = 1\nresolution = 4\nnum_classes = 3\n"
                                     "null_class = 1\n", "distill.toml");
  auto bn = bad.table("torchscript");
  EXPECT_THROW(read_script_contract(bn), ConfigError);
  UNetOptions o;
  o.resolution = 8;
  o.widths = {8};
  o.groups = 4;
  UNetDenoiser u(o, Schedule(), Prediction::Eps);
  save_unet(tmp.path / "unet.safetensors", u);
  EXPECT_THROW(load_diffusion_model(tmp.path / "unet.safetensors", nullptr, &c), ConfigError);
}

UNetOptions tiny_unet() {
  UNetOptions o;
  o.resolution = 8;
  o.widths = {8, 16};
  o.blocks = 2;
  o.time_dim = 16;
  o.num_classes = 3;
  o.groups = 4;
  o.heads = 2;
  return o;
}

UNetDenoiser random_unet(Prediction p) {
  torch::manual_seed(5);
  UNetDenoiser m(tiny_unet(), Schedule(ScheduleOptions{ScheduleKind::Cosine, 1000, false}), p);
  torch::NoGradGuard ng;
  for (auto& q : m->parameters()) q.add_(torch::randn_like(q) * 0.05);  // the zero-initialised layers too
  return m;
}

// The export runs LibTorch's convolutions and attention: so does the native UNet these tests
// compare it with.
TEST(TorchScriptExport, TheExportedUNetGivesTheUNetsOutputsAndFeatures) {
  test::ScopedConv libtorch_ops("direct", "bmm");
  test::TempDir tmp("ts-export");
  for (auto p : {Prediction::Eps, Prediction::V}) {
    auto unet = random_unet(p);
    ScriptContract c;
    auto module = unet_to_torchscript(*unet, &c);
    TorchScriptModel scripted(module, c, "exported");
    auto x = torch::randn({3, 1, 8, 8});
    auto t = torch::tensor({0.02f, 0.5f, 1.0f});
    auto cond = Cond::classes(torch::tensor(std::vector<int64_t>{0, 2, kNullClass}));
    torch::NoGradGuard ng;
    EXPECT_TRUE(torch::allclose(scripted->x0(x, t, cond), unet->x0(x, t, cond), 1e-5, 1e-5));
    EXPECT_TRUE(torch::allclose(scripted->eps(x, t, cond), unet->eps(x, t, cond), 1e-5, 1e-5));
    auto a = scripted->encode_levels(x, t, cond), b = unet->encode_levels(x, t, cond);
    ASSERT_EQ(a.size(), b.size());
    for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(torch::allclose(a[i], b[i], 1e-5, 1e-5)) << "level " << i;
  }
  // A video model over render channels (the novel-view teacher's kind): temporal attention, the
  // condition appended to each frame, frames folded into the batch and back.
  UNetOptions video = tiny_unet();
  video.channels = 3;
  video.num_classes = 0;
  video.frames = 3;
  video.concat_channels = 4;
  video.temporal_heads = 2;
  torch::manual_seed(6);
  UNetDenoiser v(video, Schedule(), Prediction::V);
  {
    torch::NoGradGuard ng;
    for (auto& q : v->parameters()) q.add_(torch::randn_like(q) * 0.05);
  }
  ScriptContract c;
  TorchScriptModel scripted(unet_to_torchscript(*v, &c), c, "exported-video");
  EXPECT_EQ(scripted->shape().batch(2), (std::vector<int64_t>{2, 3, 3, 8, 8}));
  auto x = torch::randn({2, 3, 3, 8, 8});
  auto t = torch::tensor({0.3f, 0.9f});
  auto cond = Cond::concatenated(torch::randn({2, 3, 4, 8, 8}));
  torch::NoGradGuard ng;
  EXPECT_TRUE(torch::allclose(scripted->x0(x, t, cond), v->x0(x, t, cond), 1e-5, 1e-5));
  auto a = scripted->encode_levels(x, t, cond), b = v->encode_levels(x, t, cond);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(torch::allclose(a[i], b[i], 1e-5, 1e-5)) << "video level " << i;
  EXPECT_THROW(scripted->x0(x, t, Cond{}), Error);  // it reads render channels: none given is named
  video.num_classes = 2;  // classes and render channels: cond cannot be both
  UNetDenoiser both(video, Schedule(), Prediction::V);
  EXPECT_THROW(unet_to_torchscript(*both, nullptr), ConfigError);
}

// The shipped novel-view teacher's export is a novel-view model to retort (load_video_model, as
// `retort nvs` and bench-nvs use it) and generates the native teacher's clips.
TEST(TorchScriptExport, TheExportedNovelViewTeacherGeneratesTheSameClips) {
  // The export runs LibTorch's bmm attention; retort's fused kernel rounds differently (by 1.6e-4
  // after 3 steps on one CI machine), and is checked against bmm in small_attention_test.cpp.
  test::ScopedConv libtorch_ops("direct", "bmm");
  test::TempDir tmp("ts-nvs");
  const fs::path shipped = fs::path(RETORT_SOURCE_DIR) / "weights" / "nvs-teacher.safetensors";
  export_torchscript(shipped, tmp.path / "nvs-teacher.pt");
  auto native = load_video_model(shipped), scripted = load_video_model(tmp.path / "nvs-teacher.pt");
  EXPECT_EQ(scripted.frames(), native.frames());
  EXPECT_EQ(scripted.reads_mask(), native.reads_mask());
  auto shape = native.net->shape();
  shape.channels = shape.concat_channels;
  auto concat = torch::randn(shape.batch(2)).clamp(-1, 1);
  TeacherSampling s;
  s.steps = 3;
  Rng r1(4), r2(4);
  auto a = generate_clips(native, concat, s, r1), b = generate_clips(scripted, concat, s, r2);
  EXPECT_TRUE(torch::allclose(a, b, 1e-4, 1e-4)) << (a - b).abs().max().item<double>();
}

TEST(TorchScriptExport, TheExportedStudentsSampleIsTheStudentsChain) {
  test::TempDir tmp("ts-student");
  auto unet = random_unet(Prediction::V);
  FewStepStudent student(unet.ptr(), default_student_timesteps(3));
  save_student(tmp.path / "student.safetensors", student);
  export_torchscript(tmp.path / "student.safetensors", tmp.path / "student.pt");
  Rng rng(3);
  auto labels = torch::tensor(std::vector<int64_t>{0, 1, 2, kNullClass});
  torch::Tensor draws;
  auto images = student->sample(labels, rng, 250, &draws);
  ASSERT_EQ(draws.sizes(), (std::vector<int64_t>{3, 4, 1, 8, 8}));
  auto exported = torch::jit::load((tmp.path / "student.pt").string());
  torch::NoGradGuard ng;
  auto again = exported.get_method("sample")({draws[0], labels, draws.narrow(0, 1, 2)}).toTensor();
  EXPECT_TRUE(torch::allclose(again, images, 1e-5, 1e-5)) << (again - images).abs().max().item<double>();
  // retort reads the export back as a student with the same steps.
  auto back = load_student(tmp.path / "student.pt");
  ASSERT_TRUE(back);
  EXPECT_EQ(back->timesteps(), student->timesteps());
}

// A TorchScript teacher distils like the UNet it was exported from: DMD's student (no
// discriminator, so no head initialised from the global generator) is the same to float rounding,
// and a run stopped half way and continued ends where the uninterrupted one does.
TEST(TorchScriptExport, DistillingTheExportedTeacherGivesTheNativeTeachersStudent) {
  test::TempDir tmp("ts-distill");
  test::write_bar_dataset(tmp.path, 48);
  auto unet = random_unet(Prediction::Eps);
  save_unet(tmp.path / "teacher.safetensors", unet);
  export_torchscript(tmp.path / "teacher.safetensors", tmp.path / "teacher.pt");
  auto config = [&](const std::string& teacher, int64_t steps) {
    auto root = ConfigNode::from_string(
        "teacher = \"" + (tmp.path / teacher).string() + "\"\n" + test::block_data_toml(tmp.path) +
            fmt::format("[distill]\nmethod = \"dmd\"\nstudent_steps = 2\nsteps = {}\nbatch = 8\nlog_every = 2\n"
                        "checkpoint_every = 2\n",
                        steps),
        "distill.toml");
    auto cfg = read_image_distill_config(root);
    root.finish();
    return cfg;
  };
  auto native = distill_images(config("teacher.safetensors", 6), tmp.path / "native", false, "native");
  auto scripted = distill_images(config("teacher.pt", 6), tmp.path / "scripted", false, "scripted");
  ASSERT_TRUE(fs::exists(tmp.path / "scripted" / "student.pt"));
  Rng r1(9), r2(9);
  auto labels = torch::tensor(std::vector<int64_t>{0, 1, 2});
  auto a = native->sample(labels, r1), b = scripted->sample(labels, r2);
  EXPECT_TRUE(torch::allclose(a, b, 1e-4, 1e-4)) << (a - b).abs().max().item<double>();
  // Every method plan runs on it: the GAN heads read its exported `features`.
  for (const std::string method : {"dmd2", "fvgen", "gan", "softened_rkl", "kl"}) {
    auto cfg = config("teacher.pt", 2);
    cfg.method = method;
    apply_method_preset(cfg);
    cfg.gan_init_steps = 2;
    auto s = distill_images(cfg, tmp.path / method, false, method);
    EXPECT_TRUE(fs::exists(tmp.path / method / "student.pt")) << method;
  }
  // The fake score as LoRA adapters (issue 22) on the native teacher; refused on the TorchScript one.
  auto lora = config("teacher.safetensors", 2);
  lora.method = "dmd2";
  apply_method_preset(lora);
  lora.fake = "lora";
  distill_images(lora, tmp.path / "lora", false, "lora");
  EXPECT_TRUE(fs::exists(tmp.path / "lora" / "student.safetensors"));
  lora.teacher = tmp.path / "teacher.pt";
  EXPECT_THROW(distill_images(lora, tmp.path / "lora-ts", false, "lora-ts"), ConfigError);
  EXPECT_FALSE(fs::exists(tmp.path / "lora-ts"));
  distill_images(config("teacher.pt", 2), tmp.path / "resumed", false, "resumed");
  auto resumed = distill_images(config("teacher.pt", 6), tmp.path / "resumed", false, "resumed");
  auto after = resumed->named_parameters();
  for (const auto& p : scripted->named_parameters())
    EXPECT_TRUE(torch::equal(p.value(), after[p.key()])) << p.key();
}

// generate3d on the shipped world teacher's export: SDS (no fake score) gives the native teacher's
// field to the bit; ASD with a copied fake runs; the embedding fake, which needs the UNet's condition
// embedding, is refused before the run folder is made.
TEST(TorchScriptExport, Generate3dOnTheExportedWorldTeacher) {
  test::ScopedConv direct("direct");  // and runtime.conv below: run_generate3d applies the config's
  test::TempDir tmp("ts-generate3d");
  const fs::path shipped = fs::path(RETORT_SOURCE_DIR) / "weights" / "world-teacher.safetensors";
  export_torchscript(shipped, tmp.path / "world.pt");
  auto config = [&](const fs::path& teacher, const std::string& method, const std::string& fake) {
    auto root = ConfigNode::from_file(fs::path(RETORT_SOURCE_DIR) / "configs" / "text3d.toml",
                                      {"teacher=\"" + teacher.string() + "\"", "generate3d.method=" + method,
                                       "generate3d.fake=" + fake, "generate3d.steps=3", "runtime.threads=1",
                                       "runtime.conv=\"direct\"",
                                       "output.gif_frames=2", "output.resolution=32", "output.mesh_resolution=16"});
    return read_generate3d_config(root);
  };
  run_generate3d(config(shipped, "sds", "embedding"), tmp.path / "native", false, "native");
  run_generate3d(config(tmp.path / "world.pt", "sds", "embedding"), tmp.path / "scripted", false, "scripted");
  auto a = load_safetensors(tmp.path / "native" / "field.safetensors");
  auto b = load_safetensors(tmp.path / "scripted" / "field.safetensors");
  for (const auto& [name, t] : a) EXPECT_TRUE(torch::equal(t, b.at(name))) << name;
  run_generate3d(config(tmp.path / "world.pt", "asd", "copy"), tmp.path / "asd", false, "asd");
  EXPECT_TRUE(fs::exists(tmp.path / "asd" / "field.safetensors"));
  EXPECT_THROW(run_generate3d(config(tmp.path / "world.pt", "asd", "embedding"), tmp.path / "refused", false, "x"),
               ConfigError);
  EXPECT_THROW(run_generate3d(config(tmp.path / "world.pt", "asd", "lora"), tmp.path / "refused", false, "x"),
               ConfigError);
  EXPECT_FALSE(fs::exists(tmp.path / "refused"));
  // ASD with phi as LoRA (issue 22) on the native teacher runs and keeps the teacher file as it was.
  const auto before = load_safetensors(shipped);
  run_generate3d(config(shipped, "asd", "lora"), tmp.path / "lora", false, "lora");
  EXPECT_TRUE(fs::exists(tmp.path / "lora" / "field.safetensors"));
  for (const auto& [name, t] : load_safetensors(shipped)) EXPECT_TRUE(torch::equal(t, before.at(name))) << name;
}

// The exact score of an isotropic mixture written as a TorchScript model of points (contract dim),
// over the discrete table of `schedule`: what a user's trained model of a mixture would be.
fs::path mixture_module(const fs::path& path, const GaussianMixture& g, const Schedule& schedule) {
  torch::jit::Module m("Mixture");
  m.register_buffer("abar", schedule.discrete_alpha_bar().to(torch::kFloat32));
  m.register_buffer("means", g.means().to(torch::kFloat32));
  m.register_buffer("var", g.eigvals().select(1, 0).to(torch::kFloat32));  // isotropic: one eigenvalue
  m.register_buffer("logw", g.weights().log().to(torch::kFloat32));
  m.define(R"(
def forward(self, x: Tensor, t: Tensor, cond: Tensor) -> Tensor:
    ab = self.abar[t]
    a = ab.sqrt().unsqueeze(1)
    s2 = (1.0 - ab).unsqueeze(1)
    var = a * a * self.var.unsqueeze(0) + s2
    diff = x.unsqueeze(1) - a.unsqueeze(2) * self.means.unsqueeze(0)
    logp = self.logw.unsqueeze(0) - 0.5 * (diff * diff).sum(2) / var - 0.5 * x.size(1) * torch.log(var)
    r = torch.softmax(logp, 1)
    score = -(r.unsqueeze(2) * diff / var.unsqueeze(2)).sum(1)
    return -s2.sqrt() * score
)");
  m.save(path.string(), {{"retort.json", R"({"prediction": "eps", "time": "discrete", "schedule": "linear",
      "schedule_steps": 1000, "dim": 2, "num_classes": 0})"}});
  return path;
}

// bench-gmm distils a TorchScript model of the mixture: on the schedule's grid it is the exact
// teacher's eps, the runs score like the exact teacher's, and a model of the wrong dimension is
// refused before anything is written.
TEST(TorchScriptModel, BenchGmmDistilsATorchScriptModelOfTheMixture) {
  test::TempDir tmp("ts-gmm");
  const auto text = [&](const std::string& teacher) {
    return fmt::format("seed = 1\n{}[runtime]\nthreads = 1\n[target]\npreset = \"ring\"\nmodes = 4\nradius = 2.0\n"
                       "std = 0.15\n[eval]\nsamples = 1000\nreference = 2000\n[defaults]\nsteps = 1000\nbatch = 128\n"
                       "critic_steps = 2\nparticles = 256\nlr = 2e-2\nlog_every = 100\ncheckpoint_every = 0\n"
                       "[[run]]\nmethod = \"vsd\"\ngenerator = \"particles\"\n",
                       teacher.empty() ? "" : "teacher = \"" + teacher + "\"\n");
  };
  auto exact = parse_gmm_bench_config(ConfigNode::from_string(text(""), "exact.toml"));
  const GaussianMixture g(exact.components);
  const Schedule schedule(exact.schedule);
  const auto file = mixture_module(tmp.path / "mixture.pt", g, schedule);
  auto model = load_diffusion_model(file);
  MixtureTeacher teacher(g, schedule);
  auto x = torch::randn({64, 2}) * 2;
  auto t = torch::full({64}, schedule.time_of_step(499));
  {
    torch::NoGradGuard ng;
    EXPECT_TRUE(torch::allclose(model->eps(x, t, Cond{}), teacher.eps(x, t, Cond{}), 1e-4, 1e-4));
  }
  auto scripted = parse_gmm_bench_config(ConfigNode::from_string(text(file.string()), "scripted.toml"));
  auto a = run_gmm_bench(exact, tmp.path / "exact", {false});
  auto b = run_gmm_bench(scripted, tmp.path / "scripted", {false});
  const auto& ra = a.at(0);
  const auto& rb = b.at(0);
  fmt::print("exact teacher: modes {} MMD {:.4f}; TorchScript model: modes {} MMD {:.4f}\n",
             ra["modes_covered"].get<int64_t>(), ra["mmd"].get<double>(), rb["modes_covered"].get<int64_t>(),
             rb["mmd"].get<double>());
  for (const auto* r : {&ra, &rb}) {  // both match the target as the end-to-end tests require of VSD
    EXPECT_EQ((*r)["modes_covered"].get<int64_t>(), 4);
    EXPECT_LT((*r)["mmd"].get<double>(), 0.05);
    EXPECT_GT((*r)["in_3sigma"].get<double>(), 0.8);
  }
  EXPECT_NEAR(rb["mmd"].get<double>(), ra["mmd"].get<double>(), 0.02);
  auto wrong = text(file.string());
  wrong.replace(wrong.find("modes = 4"), 9, "modes = 4\ndim = 3");
  try {
    parse_gmm_bench_config(ConfigNode::from_string(wrong, "wrong.toml"));
    FAIL() << "a 2-D model for a 3-D target";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("the target's points have 3 dimensions"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace retort
