// bench-nvs: every row is scored and tabled, finished rows are kept, the hole filling baseline
// fills only holes, and bad rows are refused before anything is written.
#include <gtest/gtest.h>

#include <fstream>

#include <nlohmann/json.hpp>

#include "retort/models/classifier.h"
#include "retort/nvs/nvs_bench.h"
#include "retort/nvs/scene_dataset.h"
#include "retort/nvs/video_distill.h"
#include "retort/nvs/video_teacher.h"
#include "nvs_test_util.h"
#include "test_util.h"

namespace retort {
namespace {

namespace fs = std::filesystem;

TEST(FillHoles, KnownPixelsStayAndHolesTakeTheirSurroundings) {
  auto img = torch::full({1, 3, 6, 6}, 0.25);
  img.index_put_({0, torch::indexing::Slice(), 2, 3}, -1.0);
  auto mask = torch::ones({1, 1, 6, 6});
  mask.index_put_({0, 0, 2, 3}, 0.0);
  mask.index_put_({0, 0, 0, 0}, 0.0);
  auto out = fill_holes(img, mask);
  EXPECT_TRUE(torch::allclose(out, torch::full_like(img, 0.25)));
  // Known pixels are untouched; a hole two rings deep is filled too.
  auto ramp = torch::linspace(-1, 1, 36).view({1, 1, 6, 6}).expand({1, 3, 6, 6}).contiguous();
  auto m2 = torch::zeros({1, 1, 6, 6});
  m2.index_put_({0, 0, torch::indexing::Slice(), 0}, 1.0);
  auto f = fill_holes(ramp, m2);
  EXPECT_TRUE(torch::equal(f.select(3, 0), ramp.select(3, 0)));
  EXPECT_TRUE(f.isfinite().all().item<bool>());
  EXPECT_GT((f.select(3, 5) - ramp.select(3, 5)).abs().max().item<double>(), 0.0);
  // No known pixel: unchanged.
  EXPECT_TRUE(torch::equal(fill_holes(ramp, torch::zeros({1, 1, 6, 6})), ramp));
}

struct TinyBench {
  test::TempDir tmp{"nvs-bench"};
  fs::path teacher, student, evaluator, regressor;
  TinyBench() {
    teacher = test::tiny_nvs_teacher(tmp.path, 12, 3, 3);
    auto d = ConfigNode::from_string(fmt::format(R"(teacher = "{0}"
[data]
train = "{1}/train.safetensors"
[distill]
method = "fvgen"
student_steps = 2
gan_init_steps = 1
steps = 1
batch = 2
checkpoint_every = 1
[runtime]
threads = 1
)", teacher.string(), tmp.path.string()), "d.toml");
    distill_nvs(read_nvs_distill_config(d), tmp.path / "student", false, d.resolved_toml());
    student = tmp.path / "student" / "student.safetensors";
    // The MSE regressor: the teacher's network and loop, trained at t = 1 only.
    regressor = test::train_tiny_nvs(tmp.path, "regressor", "cond_drop = 0\nregressor = true");
    ClassifierOptions c;
    c.channels = 3;
    c.resolution = 12;
    c.width = 8;
    c.feature_dim = 16;
    c.num_classes = 4;
    Classifier net(c);
    evaluator = tmp.path / "evaluator.safetensors";
    save_classifier(evaluator, net);
  }
  std::string config(const std::string& rows, const std::string& top = "") const {
    return fmt::format(R"(scenes = "{0}/test.safetensors"
evaluator = "{1}"
clips = 3
batch = 2
{3}
[reconstruction]
scenes = 2
steps = 150
rays = 256
voxels = 16
samples = 16
[runtime]
threads = 1
{2})", tmp.path.string(), evaluator.string(), rows, top);
  }
  std::string rows() const {
    return fmt::format(R"([[model]]
name = "teacher 2"
file = "{0}"
steps = 2
[[model]]
name = "regressor"
file = "{2}"
steps = 1
[[model]]
name = "fvgen 2"
file = "{1}"
ablation = "GAN init + softened RKL"
)", teacher.string(), student.string(), regressor.string());
  }
  nlohmann::json run(const std::string& toml, const fs::path& out) const {
    auto root = ConfigNode::from_string(toml, "b.toml");
    return run_nvs_bench(read_nvs_bench_config(root), out, false, root.resolved_toml());
  }
};

TEST(NvsBench, ScoresEveryRowAndKeepsFinishedOnes) {
  TinyBench w;
  const auto out = w.tmp.path / "bench";
  auto res = w.run(w.config(w.rows()), out);
  ASSERT_EQ(res["rows"].size(), 4u);
  EXPECT_EQ(res["rows"][0]["name"], "point cloud + hole filling");
  EXPECT_EQ(res["rows"][1]["evaluations"], 2);
  EXPECT_EQ(res["rows"][2]["evaluations"], 1);
  EXPECT_EQ(res["rows"][3]["kind"], "student");
  for (const auto& r : res["rows"]) {
    for (const char* k : {"psnr", "psnr_covered", "ssim", "feature_distance", "fid", "consistency_l1",
                          "reconstruction_psnr", "seconds_per_trajectory"})
      EXPECT_TRUE(r[k].is_number() && std::isfinite(r[k].get<double>())) << r["name"] << " " << k;
    EXPECT_LT(r["psnr"].get<double>(), 100.0);
    EXPECT_GT(r["fid"].get<double>(), 0.0) << r["name"];
  }
  // The baseline keeps the covered pixels (frame renders are point splats of the true colours), so
  // it beats its own holes there.
  EXPECT_GT(res["rows"][0]["psnr_covered"].get<double>(), res["rows"][0]["psnr_holes"].get<double>());
  EXPECT_TRUE(std::isfinite(res["truth_consistency_l1"].get<double>()));
  // Downstream reconstruction: the ground-truth frames (the oracle) beat the input view alone.
  std::cerr << "reconstruction: input alone " << res["reconstruction_inputs_only"] << " dB, oracle "
            << res["reconstruction_oracle"] << " dB\n";
  EXPECT_GT(res["reconstruction_oracle"].get<double>(), res["reconstruction_inputs_only"].get<double>() + 1.0);
  for (const char* f : {"results.md", "results.json", "strip.png", "rows/03.json"}) EXPECT_TRUE(fs::exists(out / f)) << f;
  std::ifstream in(out / "results.md");
  const std::string md((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_NE(md.find("| fvgen 2 | 2 |"), std::string::npos) << md;
  EXPECT_NE(md.find("| GAN init + softened RKL | fvgen 2 |"), std::string::npos) << md;
  // A rerun takes the finished rows as they are: same numbers, the timing included.
  auto again = w.run(w.config(w.rows()), out);
  EXPECT_EQ(again["rows"][3]["seconds_per_trajectory"], res["rows"][3]["seconds_per_trajectory"]);
}

TEST(NvsBench, AblationTableAveragesAVariantsSeeds) {
  auto row = [](const std::string& name, const std::string& label, double psnr) {
    nlohmann::json r{{"name", name}, {"evaluations", 4}, {"psnr", psnr}, {"ssim", 0.5}, {"fid", 10.0}};
    if (!label.empty()) r["ablation"] = label;
    return r;
  };
  nlohmann::json res{{"clips", 2}, {"frames", 3}, {"resolution", 12}, {"scenes", "s"}, {"truth_consistency_l1", 0.01}};
  res["rows"] = {row("teacher", "", 20.0), row("gan", "GAN only", 15.0), row("fvgen", "GAN + softened RKL", 17.0),
                 row("gan s1", "GAN only", 16.0)};
  const auto md = nvs_bench_markdown(res);
  EXPECT_NE(md.find("| GAN only | gan, gan s1 | 15.50 (15.00, 16.00) | 0.500 (0.500, 0.500) |"), std::string::npos) << md;
  EXPECT_NE(md.find("| GAN + softened RKL | fvgen | 17.00 | 0.500 | 10.00 |"), std::string::npos) << md;
  EXPECT_LT(md.find("| GAN only |"), md.find("| GAN + softened RKL |"));  // first appearance order
  EXPECT_EQ(md.find("| teacher | gan"), std::string::npos);
}

TEST(NvsBench, BadRowsAreRefusedBeforeWriting) {
  TinyBench w;
  const auto out = w.tmp.path / "refused";
  auto refused = [&](const std::string& rows, const std::string& top = "") {
    return test::error_of<ConfigError>([&] { w.run(w.config(rows, top), out); });
  };
  EXPECT_NE(refused(fmt::format("[[model]]\nname = \"s\"\nfile = \"{}\"\nsteps = 4\n", w.student.string())).find("steps"),
            std::string::npos);
  EXPECT_NE(refused("[[model]]\nname = \"x\"\nfile = \"/nonexistent/m.safetensors\"\n").find("/nonexistent/m.safetensors"),
            std::string::npos);
  EXPECT_NE(refused(fmt::format("[[model]]\nfile = \"{}\"\n", w.teacher.string())).find("name"), std::string::npos);
  EXPECT_NE(refused(fmt::format("[[model]]\nname = \"a\"\nfile = \"{0}\"\n[[model]]\nname = \"a\"\nfile = \"{0}\"\n",
                                w.teacher.string()))
                .find("used twice"),
            std::string::npos);
  EXPECT_NE(test::io_error([&] {
              w.run(w.config(fmt::format("[[model]]\nname = \"e\"\nfile = \"{}\"\n", w.evaluator.string())), out);
            }).find("not a retort UNet"),
            std::string::npos);
  EXPECT_NE(refused("", "point_cloud = false").find("nothing to score"), std::string::npos);
  EXPECT_FALSE(fs::exists(out));
}

}  // namespace
}  // namespace retort
