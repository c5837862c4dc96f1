#include <gtest/gtest.h>

// cairo's headers live in /usr/include/cairo; the library links it privately, so no include path here.
#include <cairo/cairo.h>

#include <cmath>
#include <fstream>
#include <vector>

#include "retort/core/error.h"
#include "retort/core/rng.h"
#include "retort/eval/image_metrics.h"
#include "retort/io/safetensors.h"
#include "retort/models/classifier.h"
#include "retort/plot/curves.h"
#include "test_util.h"

namespace retort {
namespace {

namespace fs = std::filesystem;
using torch::indexing::Slice;

// n samples whose sample mean and unbiased covariance are exactly `mean` and `cov`.
torch::Tensor exact_moments(int64_t n, const torch::Tensor& mean, const torch::Tensor& cov, uint64_t seed) {
  Rng rng(seed);
  auto z = rng.randn({n, mean.size(0)}).to(torch::kFloat64);
  z = z - z.mean(0);
  auto white = torch::inverse(torch::linalg_cholesky(z.t().mm(z) / double(n - 1)));
  return z.mm(white.t()).mm(torch::linalg_cholesky(cov).t()) + mean;
}

TEST(Frechet, DiagonalGaussiansMatchClosedForm) {
  auto a = exact_moments(500, torch::tensor({0.0, 0.0, 0.0}, torch::kFloat64),
                         torch::diag(torch::tensor({1.0, 4.0, 0.25}, torch::kFloat64)), 1);
  auto b = exact_moments(700, torch::tensor({1.0, 2.0, 0.0}, torch::kFloat64),
                         torch::diag(torch::tensor({4.0, 1.0, 0.25}, torch::kFloat64)), 2);
  // |mu_a - mu_b|^2 + sum (sd_a - sd_b)^2 = 5 + (1 + 1 + 0)
  EXPECT_NEAR(frechet_distance(a, b), 7.0, 1e-9);
  EXPECT_NEAR(frechet_distance(b, a), 7.0, 1e-9);
  EXPECT_NEAR(frechet_distance(a.to(torch::kFloat32), a.to(torch::kFloat32)), 0.0, 1e-9);
}

TEST(Frechet, CorrelatedGaussiansMatchClosedForm) {
  auto sa = torch::tensor({2.0, 0.8, 0.8, 1.0}, torch::kFloat64).view({2, 2});
  auto sb = torch::tensor({1.0, -0.3, -0.3, 0.5}, torch::kFloat64).view({2, 2});
  auto a = exact_moments(400, torch::tensor({0.0, 0.0}, torch::kFloat64), sa, 3);
  auto b = exact_moments(300, torch::tensor({0.5, -1.0}, torch::kFloat64), sb, 4);
  // For 2x2 M with non-negative eigenvalues: tr sqrt(M) = sqrt(tr M + 2 sqrt(det M)).
  auto m = sa.mm(sb);
  double tr_sqrt = std::sqrt(m.trace().item<double>() + 2 * std::sqrt(m.det().item<double>()));
  double expected = 0.25 + 1.0 + 3.0 + 1.5 - 2 * tr_sqrt;
  EXPECT_NEAR(frechet_distance(a, b), expected, 1e-9);
}

TEST(Frechet, ZeroAgainstItselfAndGrowsWithImageNoise) {
  torch::manual_seed(3);
  ClassifierOptions o;
  o.resolution = 16, o.width = 8, o.feature_dim = 32;
  Classifier model(o);  // random init: its features still move away as the images do
  Rng rng(5);
  auto coarse = rng.randn({400, 1, 4, 4});
  auto images = torch::tanh(torch::nn::functional::interpolate(
      coarse, torch::nn::functional::InterpolateFuncOptions().size(std::vector<int64_t>{16, 16}).mode(torch::kBilinear).align_corners(false)));
  auto ref = classifier_features(model, images, 128);
  ASSERT_EQ(ref.sizes().vec(), (std::vector<int64_t>{400, 32}));
  double self = frechet_distance(ref, ref);
  double previous = 0;
  for (double sd : {0.05, 0.1, 0.2, 0.4, 0.8}) {
    auto noisy = images + sd * rng.randn(images.sizes());
    double fid = frechet_distance(ref, classifier_features(model, noisy));
    EXPECT_GT(fid, previous) << "noise sd " << sd;
    previous = fid;
  }
  EXPECT_LT(self, 1e-6 * previous);
  EXPECT_GE(self, 0.0);
}

TEST(Frechet, RejectsBadInput) {
  EXPECT_THROW(frechet_distance(torch::randn({1, 3}), torch::randn({5, 3})), Error);
  EXPECT_THROW(frechet_distance(torch::randn({5, 3}), torch::randn({5, 4})), Error);
  EXPECT_THROW(frechet_distance(torch::randn({5}), torch::randn({5, 4})), Error);
  auto bad = torch::randn({5, 3});
  bad[2][1] = NAN;
  EXPECT_TRUE(std::isnan(frechet_distance(torch::randn({5, 3}), bad)));
}

// The definition, vectorised differently: cdist, sorted rows, the k-th other row.
PrecisionRecall brute_force(const torch::Tensor& real, const torch::Tensor& fake, int64_t k) {
  auto radii = [&](const torch::Tensor& x) { return std::get<0>(torch::cdist(x, x).sort(1)).select(1, k); };
  auto inside = [](const torch::Tensor& q, const torch::Tensor& ref, const torch::Tensor& r) {
    return (torch::cdist(q, ref) <= r.unsqueeze(0)).any(1).to(torch::kFloat64).mean().item<double>();
  };
  auto r = real.to(torch::kFloat64), f = fake.to(torch::kFloat64);
  return {inside(f, r, radii(r)), inside(r, f, radii(f))};
}

TEST(PrecisionRecall, IdenticalIsOneFarApartIsZero) {
  Rng rng(7);
  auto x = rng.randn({300, 5});
  auto same = precision_recall(x, x);
  EXPECT_EQ(same.precision, 1.0);
  EXPECT_EQ(same.recall, 1.0);
  auto far = precision_recall(x, x + 100);
  EXPECT_EQ(far.precision, 0.0);
  EXPECT_EQ(far.recall, 0.0);
  // Half the fake set far away: precision drops, recall is untouched.
  auto half = precision_recall(x, torch::cat({x.narrow(0, 0, 150), x.narrow(0, 150, 150) + 100}));
  EXPECT_EQ(half.precision, 0.5);
  EXPECT_GT(half.recall, 0.5);
}

TEST(PrecisionRecall, MatchesBruteForceAcrossChunks) {
  Rng rng(8);
  // Sizes above the 1024-row chunk, a shifted and narrower fake set so neither number is trivial.
  auto real = rng.randn({1100, 4}).to(torch::kFloat64);
  auto fake = 0.7 * rng.randn({1030, 4}).to(torch::kFloat64) + 0.4;
  for (int64_t k : {1, 3, 5}) {
    auto got = precision_recall(real, fake, k), want = brute_force(real, fake, k);
    EXPECT_NEAR(got.precision, want.precision, 1.5 / 1030) << "k=" << k;
    EXPECT_NEAR(got.recall, want.recall, 1.5 / 1100) << "k=" << k;
    EXPECT_GT(got.precision, 0.5);
    EXPECT_LT(got.recall, 0.95);
  }
  auto big = rng.randn({1500, 3});
  auto same = precision_recall(big, big);
  EXPECT_EQ(same.precision, 1.0);
  EXPECT_EQ(same.recall, 1.0);
}

TEST(PrecisionRecall, RejectsBadInput) {
  EXPECT_THROW(precision_recall(torch::randn({10, 3}), torch::randn({10, 3}), 0), Error);
  EXPECT_THROW(precision_recall(torch::randn({3, 3}), torch::randn({10, 3}), 3), Error);
  EXPECT_THROW(precision_recall(torch::randn({10, 3}), torch::randn({10, 2}), 3), Error);
}

TEST(EvaluateImages, ClassAccuracyAndSelfScores) {
  torch::manual_seed(11);
  ClassifierOptions o;
  o.resolution = 12, o.width = 4, o.feature_dim = 16, o.num_classes = 4;
  Classifier model(o);
  auto images = Rng(12).rand({200, 1, 12, 12}) * 2 - 1;
  torch::Tensor predicted;
  {
    torch::NoGradGuard ng;
    model->eval();
    predicted = model->forward(images).argmax(1);
  }
  auto ref = classifier_features(model, images, 64);
  auto e = evaluate_images(model, images, predicted, ref);
  EXPECT_EQ(e.n, 200);
  EXPECT_EQ(e.class_accuracy, 1.0);
  EXPECT_NEAR(e.fid, 0.0, 1e-6);
  EXPECT_EQ(e.precision, 1.0);
  EXPECT_EQ(e.recall, 1.0);
  EXPECT_EQ(evaluate_images(model, images, (predicted + 1) % 4, ref).class_accuracy, 0.0);
  auto unlabelled = evaluate_images(model, images, torch::Tensor(), ref);
  EXPECT_TRUE(std::isnan(unlabelled.class_accuracy));
  EXPECT_NE(image_eval_markdown(unlabelled).find("| 200 | 0.000 | 1.000 | 1.000 | n/a |"), std::string::npos)
      << image_eval_markdown(unlabelled);
  EXPECT_THROW(evaluate_images(model, images, predicted.narrow(0, 0, 10), ref), Error);
}

TEST(EvaluateImages, ImageFileReadsAndRejects) {
  test::TempDir tmp("imgfile");
  const auto path = tmp.path / "s.safetensors";
  auto images = torch::rand({6, 1, 8, 8}) * 2 - 1;
  auto labels = torch::arange(6);
  save_safetensors(path, {{"images", images}, {"labels", labels}});
  torch::Tensor im, lb;
  load_image_file(path, &im, &lb);
  EXPECT_EQ(test::max_abs_diff(im, images), 0.0);
  EXPECT_EQ(test::max_abs_diff(lb, labels), 0.0);
  save_safetensors(path, {{"images", images}});
  load_image_file(path, &im, &lb);
  EXPECT_FALSE(lb.defined());

  save_safetensors(path, {{"pictures", images}});
  auto msg = test::io_error([&] { load_image_file(path, &im, &lb); });
  EXPECT_NE(msg.find(path.string()), std::string::npos) << msg;
  EXPECT_NE(msg.find("'images'"), std::string::npos) << msg;
  save_safetensors(path, {{"images", images}, {"labels", labels.to(torch::kInt32)}});
  msg = test::io_error([&] { load_image_file(path, &im, &lb); });
  EXPECT_NE(msg.find("'labels' must be int64 [6]"), std::string::npos) << msg;
  save_safetensors(path, {{"images", images.flatten(1)}});
  msg = test::io_error([&] { load_image_file(path, &im, &lb); });
  EXPECT_NE(msg.find("[N, C, H, W]"), std::string::npos) << msg;
  msg = test::io_error([&] { load_image_file(tmp.path / "missing.safetensors", &im, &lb); });
  EXPECT_NE(msg.find("missing.safetensors"), std::string::npos) << msg;
}

// ---- curves ----

// Pixels of the PNG (ARGB), or empty when it cannot be decoded.
std::vector<uint32_t> read_png(const fs::path& path, int* w, int* h) {
  cairo_surface_t* s = cairo_image_surface_create_from_png(path.c_str());
  std::vector<uint32_t> px;
  if (cairo_surface_status(s) == CAIRO_STATUS_SUCCESS) {
    *w = cairo_image_surface_get_width(s), *h = cairo_image_surface_get_height(s);
    const int stride = cairo_image_surface_get_stride(s);
    for (int i = 0; i < *h; ++i)
      for (int j = 0; j < *w; ++j)
        px.push_back(reinterpret_cast<const uint32_t*>(cairo_image_surface_get_data(s) + i * stride)[j]);
  }
  cairo_surface_destroy(s);
  return px;
}

int64_t count_colour(const std::vector<uint32_t>& px, int r, int g, int b) {
  int64_t n = 0;
  for (uint32_t p : px)
    if (std::abs(int(p >> 16 & 0xff) - r) < 8 && std::abs(int(p >> 8 & 0xff) - g) < 8 && std::abs(int(p & 0xff) - b) < 8)
      ++n;
  return n;
}

TEST(Curves, WritesPngWithBothSeries) {
  test::TempDir tmp("curves");
  Curve loss{"loss", {}, {}}, other{"other", {}, {}};
  for (int i = 1; i <= 100; ++i) {
    loss.x.push_back(i), loss.y.push_back(2.0 / i);
    other.x.push_back(i), other.y.push_back(i % 10 == 0 ? NAN : 0.01 * i);  // gaps are skipped
  }
  for (bool log_y : {false, true}) {
    auto png = tmp.path / (log_y ? "log.png" : "lin.png");
    plot_curves(png, "training", "step", "value", {loss, other}, log_y);
    ASSERT_GT(fs::file_size(png), 1000u);
    int w = 0, h = 0;
    auto px = read_png(png, &w, &h);
    ASSERT_FALSE(px.empty());
    EXPECT_EQ(w, 720);
    EXPECT_EQ(h, 440);
    EXPECT_GT(count_colour(px, 31, 120, 181), 100) << "first series (blue) drawn";
    EXPECT_GT(count_colour(px, 255, 127, 13), 100) << "second series (orange) drawn";
  }
  plot_curves(tmp.path / "empty.png", "nothing", "step", "value", {{"none", {1, 2}, {NAN, -1}}}, true);
  EXPECT_TRUE(fs::exists(tmp.path / "empty.png"));
  EXPECT_THROW(plot_curves(tmp.path / "bad.png", "t", "x", "y", {{"c", {1, 2}, {1}}}), Error);
  auto msg = test::io_error([&] { plot_curves("/proc/version/x.png", "t", "x", "y", {loss}); });
  EXPECT_NE(msg.find("/proc/version/x.png"), std::string::npos) << msg;
}

TEST(Curves, MetricsCsvPlotsColumnsAndRejectsUnknownOnes) {
  test::TempDir tmp("curves-csv");
  const auto csv = tmp.path / "metrics.csv";
  std::ofstream(csv) << "step,loss,acc\n10,1.5,\n20,0.9,0.5\n30,0.7,0.6\n";
  plot_metrics_csv(csv, tmp.path / "loss.png", {"loss", "acc"}, "metrics", false);
  EXPECT_GT(fs::file_size(tmp.path / "loss.png"), 1000u);
  try {
    plot_metrics_csv(csv, tmp.path / "x.png", {"loss", "accuracy"}, "metrics", false);
    ADD_FAILURE() << "no error for an unknown column";
  } catch (const Error& e) {
    std::string m = e.what();
    EXPECT_NE(m.find(csv.string()), std::string::npos) << m;
    EXPECT_NE(m.find("'accuracy'"), std::string::npos) << m;
  }
  EXPECT_FALSE(fs::exists(tmp.path / "x.png"));
  std::ofstream(csv) << "step,loss\n10,abc\n";
  EXPECT_THROW(plot_metrics_csv(csv, tmp.path / "x.png", {"loss"}, "m", false), Error);
  EXPECT_THROW(plot_metrics_csv(tmp.path / "none.csv", tmp.path / "x.png", {"loss"}, "m", false), IoError);
}

}  // namespace
}  // namespace retort
