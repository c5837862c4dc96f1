#include <fmt/format.h>
#include <gtest/gtest.h>
#include <zlib.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <vector>

#include "retort/core/config.h"
#include "retort/core/error.h"
#include "retort/core/rng.h"
#include "retort/eval/image_metrics.h"
#include "retort/image/image_eval.h"
#include "retort/io/safetensors.h"
#include "retort/models/classifier.h"
#include "retort/image/evaluator_train.h"
#include "test_util.h"

namespace retort {
namespace {

namespace fs = std::filesystem;

ClassifierOptions small_options(int64_t channels = 1, int64_t resolution = 16) {
  ClassifierOptions o;
  o.channels = channels, o.resolution = resolution, o.width = 8, o.feature_dim = 16, o.num_classes = 5;
  return o;
}

TEST(Classifier, OutputShapesAtSeveralResolutions) {
  for (auto [c, r] : {std::pair<int64_t, int64_t>{1, 28}, {3, 32}, {1, 16}, {1, 15}, {3, 4}}) {
    Classifier m(small_options(c, r));
    m->eval();
    auto x = torch::rand({3, c, r, r}) * 2 - 1;
    EXPECT_EQ(m->features(x).sizes().vec(), (std::vector<int64_t>{3, 16})) << r;
    EXPECT_EQ(m->forward(x).sizes().vec(), (std::vector<int64_t>{3, 5})) << r;
    EXPECT_LT(test::max_abs_diff(m->forward(x), m->logits_from_features(m->features(x))), 1e-6);
  }
  Classifier m(small_options());
  EXPECT_THROW(m->forward(torch::zeros({2, 1, 28, 28})), Error);  // wrong resolution is named, not a crash
  EXPECT_THROW(Classifier(small_options(1, 3)), ConfigError);
}

TEST(Classifier, SaveLoadRoundTripGivesIdenticalLogits) {
  test::TempDir tmp("clf-rt");
  torch::manual_seed(1);
  Classifier m(small_options());
  m->train();
  for (int i = 0; i < 3; ++i) m->forward(torch::randn({8, 1, 16, 16}));  // move BN running stats off 0/1
  m->eval();
  save_classifier(tmp.path / "c.safetensors", m);
  auto loaded = load_classifier(tmp.path / "c.safetensors");
  EXPECT_FALSE(loaded->is_training());
  EXPECT_EQ(loaded->options().width, 8);
  EXPECT_EQ(loaded->options().num_classes, 5);
  auto x = torch::randn({4, 1, 16, 16});
  EXPECT_EQ(test::max_abs_diff(m->forward(x), loaded->forward(x)), 0.0);
}

TEST(Classifier, LoadRejectsMissingOrWrongMetadata) {
  test::TempDir tmp("clf-bad");
  Classifier m(small_options());
  const auto path = tmp.path / "c.safetensors";

  save_module(path, *m);  // weights without the options
  auto msg = test::io_error([&] { load_classifier(path); });
  EXPECT_NE(msg.find(path.string()), std::string::npos) << msg;
  EXPECT_NE(msg.find("retort.classifier"), std::string::npos) << msg;

  auto meta = nlohmann::json{{"channels", 1}, {"resolution", 16}, {"width", 4}, {"feature_dim", 16},
                             {"num_classes", 5}};  // width 4, tensors of width 8
  save_module(path, *m, {{"retort.classifier", meta.dump()}});
  msg = test::io_error([&] { load_classifier(path); });
  EXPECT_NE(msg.find(path.string()), std::string::npos) << msg;
  EXPECT_NE(msg.find("does not match the model"), std::string::npos) << msg;

  save_module(path, *m, {{"retort.classifier", "{\"channels\": 1}"}});
  msg = test::io_error([&] { load_classifier(path); });
  EXPECT_NE(msg.find("malformed"), std::string::npos) << msg;

  meta["width"] = 0;
  save_module(path, *m, {{"retort.classifier", meta.dump()}});
  msg = test::io_error([&] { load_classifier(path); });
  EXPECT_NE(msg.find("width = 0"), std::string::npos) << msg;
}

// ---- train_evaluator on a synthetic IDX data set ----

void write_idx_gz(const fs::path& path, const std::vector<uint32_t>& dims, const std::vector<uint8_t>& payload) {
  std::vector<uint8_t> b = {0, 0, 0x08, uint8_t(dims.size())};
  for (uint32_t d : dims)
    for (int s = 24; s >= 0; s -= 8) b.push_back(uint8_t(d >> s));
  b.insert(b.end(), payload.begin(), payload.end());
  gzFile f = gzopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr);
  ASSERT_EQ(gzwrite(f, b.data(), unsigned(b.size())), int(b.size()));
  ASSERT_EQ(gzclose(f), Z_OK);
}

// Three classes of 12x12 noisy images: a bright bar that is horizontal, vertical or diagonal.
void write_bars(const fs::path& dir, const std::string& prefix, int n, uint64_t seed) {
  Rng rng(seed);
  const int R = 12;
  std::vector<uint8_t> images, labels;
  for (int i = 0; i < n; ++i) {
    int cls = i % 3;
    int pos = rng.randint(2, 10, {1}).item<int>();
    auto noise = rng.randint(0, 90, {R * R});
    for (int y = 0; y < R; ++y)
      for (int x = 0; x < R; ++x) {
        bool on = cls == 0 ? y == pos : cls == 1 ? x == pos : std::abs(x - y) <= 0;
        images.push_back(uint8_t(on ? 230 : noise[y * R + x].item<int>()));
      }
    labels.push_back(uint8_t(cls));
  }
  write_idx_gz(dir / (prefix + "-images.gz"), {uint32_t(n), R, R}, images);
  write_idx_gz(dir / (prefix + "-labels.gz"), {uint32_t(n)}, labels);
}

std::string bars_config(const fs::path& dir, const std::string& extra = "") {
  return fmt::format(R"([data]
source = "idx"
train_images = "{0}/train-images.gz"
train_labels = "{0}/train-labels.gz"
test_images = "{0}/test-images.gz"
test_labels = "{0}/test-labels.gz"
[evaluator]
steps = 60
batch = 32
lr = 3e-3
warmup = 5
width = 4
feature_dim = 16
checkpoint_every = 30
log_every = 10
monitor = 30
{1}
[runtime]
threads = 1
)",
                     dir.string(), extra);
}

TEST(EvaluatorTrain, SyntheticIdxWellAboveChanceAndResumes) {
  test::TempDir tmp("evaluator");
  write_bars(tmp.path, "train", 300, 1);
  write_bars(tmp.path, "test", 90, 2);
  auto cfg = read_evaluator_config(ConfigNode::from_string(bars_config(tmp.path), "bars.toml"));
  const auto out = tmp.path / "out";
  auto report = train_evaluator(cfg, out, false, cfg.resolved);
  EXPECT_GT(report.test_accuracy, 0.8);  // chance: 1/3
  EXPECT_EQ(report.steps, 60);
  EXPECT_EQ(report.train_size, 300);
  EXPECT_EQ(report.test_size, 90);
  for (auto f : {"evaluator.safetensors", "evaluator.json", "config.resolved.toml", "metrics.csv", "loss.png",
                 "accuracy.png", "checkpoint.pt"})
    EXPECT_TRUE(fs::exists(out / f)) << f;
  auto model = load_classifier(out / "evaluator.safetensors");
  EXPECT_EQ(model->options().resolution, 12);
  EXPECT_EQ(model->options().num_classes, 3);

  // Run again: resumes at the final checkpoint, trains nothing, same weights and accuracy.
  auto again = train_evaluator(cfg, out, false, cfg.resolved);
  EXPECT_EQ(again.test_accuracy, report.test_accuracy);
  std::ifstream csv(out / "metrics.csv");
  int lines = 0;
  for (std::string l; std::getline(csv, l);) ++lines;
  EXPECT_EQ(lines, 1 + 6);  // header + one row per 10 steps, none duplicated

  // `retort eval` on the same data: the test split against itself, the training split as "samples".
  std::ofstream(tmp.path / "bars.toml") << bars_config(tmp.path);
  ImageEvalRequest req{tmp.path / "bars.toml", out / "evaluator.safetensors", "data:test"};
  auto self = run_image_eval(req);
  EXPECT_EQ(self.n, 90);
  EXPECT_NEAR(self.fid, 0.0, 1e-6);
  EXPECT_EQ(self.precision, 1.0);
  EXPECT_NEAR(self.class_accuracy, report.test_accuracy, 1e-12);
  req.images = "data:train", req.limit = 120;
  auto train_vs_test = run_image_eval(req);
  EXPECT_EQ(train_vs_test.n, 120);
  EXPECT_GT(train_vs_test.class_accuracy, 0.8);
  EXPECT_GT(train_vs_test.precision, 0.5);
  save_safetensors(tmp.path / "small.safetensors", {{"images", torch::zeros({4, 1, 8, 8})}});
  req.images = tmp.path / "small.safetensors";
  auto msg = test::io_error([&] { run_image_eval(req); });
  EXPECT_NE(msg.find("small.safetensors: images are [1, 8, 8]"), std::string::npos) << msg;

  // A checkpoint from another config is refused.
  auto other = read_evaluator_config(ConfigNode::from_string(bars_config(tmp.path, "seed = 7"), "bars.toml"));
  EXPECT_THROW(train_evaluator(other, out, false, other.resolved), IoError);
}

TEST(EvaluatorTrain, ConfigRejectsUnknownKeyAndBadValue) {
  auto bad = [](const std::string& text) {
    try {
      read_evaluator_config(ConfigNode::from_string(text, "e.toml"));
    } catch (const ConfigError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  auto msg = bad("[evaluator]\nstpes = 10\n");
  EXPECT_NE(msg.find("e.toml"), std::string::npos) << msg;
  EXPECT_NE(msg.find("evaluator.stpes"), std::string::npos) << msg;
  msg = bad("[evaluator]\nbatch = 0\n");
  EXPECT_NE(msg.find("evaluator.batch"), std::string::npos) << msg;
  msg = bad("[runtime]\ndevice = \"tpu\"\n");
  EXPECT_NE(msg.find("runtime.device"), std::string::npos) << msg;
}

}  // namespace
}  // namespace retort
