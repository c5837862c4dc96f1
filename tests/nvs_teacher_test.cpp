// The novel-view video teacher: it trains on render-scenes clips, resumes bit for bit, and
// `retort nvs`'s inputs are checked before anything is written.
#include <gtest/gtest.h>

#include "retort/io/png.h"
#include "retort/io/safetensors.h"
#include "retort/nvs/nvs_command.h"
#include "retort/nvs/scene_dataset.h"
#include "retort/nvs/video_teacher.h"
#include "test_util.h"

namespace retort {
namespace {

std::filesystem::path tiny_scenes(const std::filesystem::path& dir) {
  SceneDatasetOptions o;
  o.train = 6;
  o.test = 2;
  o.resolution = 12;
  o.frames = 3;
  o.supersample = false;
  render_scene_dataset(o, "train", dir / "train.safetensors", false);
  render_scene_dataset(o, "test", dir / "test.safetensors", false);
  return dir;
}

std::string tiny_config(const std::filesystem::path& scenes) {
  return fmt::format(R"([data]
train = "{0}/train.safetensors"
preview = "{0}/test.safetensors"
[model]
widths = [8, 16]
groups = 4
time_dim = 16
heads = 2
temporal_heads = 2
[train]
steps = 6
batch = 2
warmup = 2
log_every = 1
checkpoint_every = 2
[preview]
steps = 2
clips = 2
[runtime]
threads = 1
)", scenes.string());
}

TEST(NvsTeacher, TrainsAndResumesToTheSameWeights) {
  test::TempDir tmp("nvs-teacher");
  auto scenes = tiny_scenes(tmp.path);
  auto root = ConfigNode::from_string(tiny_config(scenes), "t.toml");
  auto cfg = read_nvs_teacher_config(root);
  const auto text = root.resolved_toml();
  auto a = train_nvs_teacher(cfg, tmp.path / "a", false, text);
  EXPECT_TRUE(a.finished);
  auto b = train_nvs_teacher(cfg, tmp.path / "b", false, text, 3);  // stopped after 3 steps
  EXPECT_FALSE(b.finished);
  EXPECT_FALSE(std::filesystem::exists(tmp.path / "b" / "nvs-teacher.safetensors"));
  train_nvs_teacher(cfg, tmp.path / "b", false, text);
  auto wa = load_safetensors(tmp.path / "a" / "nvs-teacher.safetensors");
  auto wb = load_safetensors(tmp.path / "b" / "nvs-teacher.safetensors");
  ASSERT_EQ(wa.size(), wb.size());
  for (const auto& [name, t] : wa) EXPECT_TRUE(torch::equal(t, wb.at(name))) << name;
  EXPECT_TRUE(std::filesystem::exists(tmp.path / "a" / "samples.png"));
  auto model = load_unet(tmp.path / "a" / "nvs-teacher.safetensors");
  EXPECT_EQ(model->net->options().frames, 3);
  EXPECT_EQ(model->net->options().concat_channels, 4);
  EXPECT_EQ(model->net->options().temporal_heads, 2);
  EXPECT_GT(wa.count("net.mid_temporal.qkv.weight"), 0u);

  // retort nvs on a held-out scene, with the stored trajectory and ground truth, and with a new one.
  NvsRequest req;
  req.model = tmp.path / "a" / "nvs-teacher.safetensors";
  req.scenes = scenes / "test.safetensors";
  req.index = 1;
  req.steps = 2;
  req.out = tmp.path / "nvs";
  auto line = run_nvs(req);
  EXPECT_NE(line.find("PSNR"), std::string::npos) << line;
  for (const char* f : {"strip.png", "generated.gif", "renders.gif", "pointcloud.ply", "generated/02.png", "truth/00.png"})
    EXPECT_TRUE(std::filesystem::exists(req.out / f)) << f;
  req.trajectory = "offset:30,10,0.1";
  req.out = tmp.path / "nvs2";
  EXPECT_NE(run_nvs(req).find("PSNR"), std::string::npos);

  // Two views of your own: PNGs and depth maps, the second camera as an offset; the clip goes
  // from the first view to the second.
  auto data = load_scene_dataset(scenes / "test.safetensors");
  NvsRequest two;
  two.model = req.model;
  two.steps = 2;
  for (int v = 0; v < 2; ++v) {
    write_png_grid(tmp.path / fmt::format("view{}.png", v), data.inputs[v][0].unsqueeze(0), 1, 0);
    save_safetensors(tmp.path / fmt::format("depth{}.safetensors", v), {{"depth", data.input_depth[v][0].contiguous()}});
  }
  two.input = tmp.path / "view0.png";
  two.depth = tmp.path / "depth0.safetensors";
  two.input2 = tmp.path / "view1.png";
  two.depth2 = tmp.path / "depth1.safetensors";
  two.distance = 2.2;
  two.out = tmp.path / "two";
  EXPECT_NE(test::error_of<ConfigError>([&] { run_nvs(two); }).find("--camera2"), std::string::npos);
  two.camera2 = "40,10,0";
  EXPECT_NE(run_nvs(two).find("3 frames"), std::string::npos);
  EXPECT_TRUE(std::filesystem::exists(two.out / "generated" / "02.png"));
  two.input2.clear();
  two.out = tmp.path / "two-bad";
  EXPECT_NE(test::error_of<ConfigError>([&] { run_nvs(two); }).find("give --input2 too"), std::string::npos);
}

TEST(NvsTeacher, BadInputsAreNamedAndWriteNothing) {
  test::TempDir tmp("nvs-inputs");
  auto scenes = tiny_scenes(tmp.path);
  auto bad = [](const std::string& toml) {
    return test::error_of<ConfigError>([&] {
      auto root = ConfigNode::from_string(toml, "t.toml");
      read_nvs_teacher_config(root);
    });
  };
  EXPECT_NE(bad("[model]\ntemporal_heads = 3\n").find("model.temporal_heads"), std::string::npos);
  EXPECT_NE(bad("[train]\nbatchh = 3\n").find("batchh"), std::string::npos);
  auto root = ConfigNode::from_string("[data]\ntrain = \"/nonexistent/train.safetensors\"\n", "t.toml");
  auto cfg = read_nvs_teacher_config(root);
  EXPECT_NE(test::io_error([&] { train_nvs_teacher(cfg, tmp.path / "t", false, "x"); }).find("/nonexistent/train.safetensors"),
            std::string::npos);

  // A tiny teacher for the nvs input checks.
  auto troot = ConfigNode::from_string(tiny_config(scenes) + "", "t.toml");
  auto tcfg = read_nvs_teacher_config(troot);
  tcfg.train.steps = 1;
  train_nvs_teacher(tcfg, tmp.path / "teacher", false, troot.resolved_toml());
  NvsRequest req;
  req.model = tmp.path / "teacher" / "nvs-teacher.safetensors";
  req.out = tmp.path / "out";
  req.input = tmp.path / "teacher" / "samples.png";  // not 12x12
  req.trajectory = "offset:10,0,0";
  EXPECT_NE(test::error_of<ConfigError>([&] { run_nvs(req); }).find("needs --depth"), std::string::npos);
  req.depth = tmp.path / "depth.safetensors";
  save_safetensors(req.depth, {{"depth", torch::ones({8, 8})}});
  EXPECT_NE(test::error_of<ConfigError>([&] { run_nvs(req); }).find("the model takes 12x12"), std::string::npos);
  req.scenes = scenes / "test.safetensors";
  req.trajectory = "orbit:1,2";
  EXPECT_NE(test::error_of<ConfigError>([&] { run_nvs(req); }).find("orbit:1,2"), std::string::npos);
  req.trajectory = "file:/nonexistent/traj.txt";
  EXPECT_NE(test::error_of<ConfigError>([&] { run_nvs(req); }).find("/nonexistent/traj.txt"), std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(req.out));
}

}  // namespace
}  // namespace retort
