#include <gtest/gtest.h>

// cairo's headers live in /usr/include/cairo; the library links it privately, so no include path here.
#include <cairo/cairo.h>

#include <array>
#include <filesystem>
#include <fstream>
#include <limits>

#include "retort/core/error.h"
#include "retort/plot/scatter.h"
#include "test_util.h"

namespace retort {
namespace {

// A decoded PNG: RGB of each pixel in [0, 255].
struct Image {
  int width = 0, height = 0;
  std::vector<uint32_t> argb;
  std::array<int, 3> rgb(double x, double y) const {
    int i = std::clamp(int(y), 0, height - 1), j = std::clamp(int(x), 0, width - 1);
    uint32_t p = argb[size_t(i) * width + j];
    return {int(p >> 16 & 0xff), int(p >> 8 & 0xff), int(p & 0xff)};
  }
};

Image read_png(const std::filesystem::path& path) {
  cairo_surface_t* s = cairo_image_surface_create_from_png(path.c_str());
  Image img;
  if (cairo_surface_status(s) == CAIRO_STATUS_SUCCESS) {
    img.width = cairo_image_surface_get_width(s);
    img.height = cairo_image_surface_get_height(s);
    const int stride = cairo_image_surface_get_stride(s);
    const unsigned char* data = cairo_image_surface_get_data(s);
    for (int i = 0; i < img.height; ++i)
      for (int j = 0; j < img.width; ++j) img.argb.push_back(reinterpret_cast<const uint32_t*>(data + i * stride)[j]);
  }
  cairo_surface_destroy(s);
  return img;
}

bool has_png_signature(const std::filesystem::path& path) {
  std::ifstream f(path, std::ios::binary);
  char sig[8] = {};
  f.read(sig, 8);
  return f && std::string(sig, 8) == std::string("\x89PNG\r\n\x1a\n", 8);
}

int colour_distance(std::array<int, 3> a, std::array<int, 3> b) {
  return std::abs(a[0] - b[0]) + std::abs(a[1] - b[1]) + std::abs(a[2] - b[2]);
}

bool reddish(std::array<int, 3> c) { return c[0] > 150 && c[0] > c[1] + 80 && c[0] > c[2] + 80; }

GaussianMixture three_modes() {
  std::vector<MixtureComponent> c(3);
  c[0] = {{-2.0, 0.0}, {{0.2, 0.0}, {0.0, 0.2}}, 1.0, kNullClass};
  c[1] = {{2.0, 1.0}, {{0.3, 0.1}, {0.1, 0.1}}, 2.0, kNullClass};
  c[2] = {{0.0, 3.0}, {{0.1, 0.0}, {0.0, 0.1}}, 1.0, kNullClass};
  return GaussianMixture(c);
}

TEST(PlotScatter, WritesAPngOfTheRightSizeShowingDensityModesAndSamples) {
  test::TempDir dir("plot");
  auto g = three_modes();
  const int size = 400;
  auto fr = panel_frame(g, size, size);
  ASSERT_GT(fr.side, size / 2);

  // Target alone: the density shows under the modes, not in the window's far corner.
  auto empty = dir.path / "target.png";
  plot_samples(empty, g, {"target", "exact density", {}}, size);
  ASSERT_TRUE(std::filesystem::exists(empty));
  EXPECT_TRUE(has_png_signature(empty));
  auto img = read_png(empty);
  ASSERT_EQ(img.width, size);
  ASSERT_EQ(img.height, size);
  auto corner = img.rgb(fr.x0 + 3, fr.y0 + 3);
  // Half a standard deviation off the mode diagonally: off the cross, high density.
  auto near = fr.to_pixel(-2.0 + 0.3, 0.0 + 0.3);
  EXPECT_GT(colour_distance(img.rgb(near[0], near[1]), corner), 60);
  auto mode = fr.to_pixel(-2.0, 0.0);
  EXPECT_TRUE(reddish(img.rgb(mode[0], mode[1])));  // the cross
  EXPECT_FALSE(reddish(corner));

  // Samples all at one low-density point inside the window: a dark spot there.
  auto spot = torch::tensor({-2.0f, 2.5f}).repeat({50, 1});
  auto with = dir.path / "samples.png";
  plot_samples(with, g, {"collapsed", "all samples at (-2, 2.5)", spot}, size);
  auto img2 = read_png(with);
  auto p = fr.to_pixel(-2.0, 2.5);
  auto c = img2.rgb(p[0], p[1]);
  EXPECT_LT(c[0] + c[1] + c[2], 200);
  EXPECT_GT(colour_distance(c, img.rgb(p[0], p[1])), 300);
}

TEST(PlotScatter, FarSamplesKeepTheWindowOnTheTargetAndAreCounted) {
  test::TempDir dir("plot-far");
  auto g = three_modes();
  const int size = 360;
  auto fr = panel_frame(g, size, size);
  // The window holds every mode with room to spare.
  for (auto [u, v] : {std::pair{-2.0, 0.0}, {2.0, 1.0}, {0.0, 3.0}}) {
    EXPECT_LT(std::abs(u - fr.cx), 0.8 * fr.half);
    EXPECT_LT(std::abs(v - fr.cy), 0.8 * fr.half);
  }
  Rng rng(1);
  // Clamped into the window, so no rare tail sample lands outside it.
  auto inside = g.sample(300, rng);
  inside = torch::stack({inside.select(1, 0).clamp(fr.cx - 0.9 * fr.half, fr.cx + 0.9 * fr.half),
                         inside.select(1, 1).clamp(fr.cy - 0.9 * fr.half, fr.cy + 0.9 * fr.half)}, 1);
  auto far = torch::cat({inside, torch::full({40, 2}, 1e4f), torch::full({5, 2}, std::numeric_limits<float>::quiet_NaN())});
  auto a = dir.path / "inside.png", b = dir.path / "far.png";
  plot_samples(a, g, {"inside", "", inside}, size);
  plot_samples(b, g, {"far", "", far}, size);
  // The "45 outside" note is red text in the plot area's top-right corner.
  auto count_red = [&](const Image& img) {
    int n = 0;
    for (int y = fr.y0; y < fr.y0 + fr.side / 8; ++y)
      for (int x = fr.x0 + fr.side / 2; x < fr.x0 + fr.side; ++x) n += reddish(img.rgb(x, y));
    return n;
  };
  auto ia = read_png(a), ib = read_png(b);
  EXPECT_EQ(count_red(ia), 0);
  EXPECT_GT(count_red(ib), 10);
  // Same window either way: the mode's cross is where it was.
  auto m = fr.to_pixel(0.0, 3.0);
  EXPECT_TRUE(reddish(ib.rgb(m[0], m[1])));
}

TEST(PlotScatter, FiveDimTargetsAreProjectedOntoTheMeansPlane) {
  test::TempDir dir("plot-5d");
  std::vector<MixtureComponent> c(3);
  for (int k = 0; k < 3; ++k) {
    c[k].mean.assign(5, 0.0);
    c[k].mean[k + 2] = 3.0;  // the means span a plane in coordinates 2..4
    c[k].cov.assign(5, std::vector<double>(5, 0.0));
    for (int i = 0; i < 5; ++i) c[k].cov[i][i] = 0.1 * (i + 1);
  }
  GaussianMixture g(c);
  auto P = plot_projection(g);
  ASSERT_EQ(P.sizes(), (std::vector<int64_t>{5, 2}));
  EXPECT_LT(test::max_abs_diff(P.t().matmul(P), torch::eye(2)), 1e-9);
  EXPECT_LT(P.slice(0, 0, 2).abs().max().item<double>(), 1e-9);  // no weight on the unused axes
  auto pm = g.means().to(torch::kFloat64).matmul(P);
  EXPECT_NEAR((pm[0] - pm[1]).norm().item<double>(), 3 * std::sqrt(2.0), 1e-5);  // the plane is kept whole

  // Two modes span one line: completed with the first coordinate axis not on it.
  GaussianMixture line({c[0], c[1]});
  auto Q = plot_projection(line);
  EXPECT_LT(test::max_abs_diff(Q.t().matmul(Q), torch::eye(2)), 1e-9);

  Rng rng(2);
  std::vector<ScatterPanel> panels;
  for (int i = 0; i < 3; ++i) panels.push_back({"method " + std::to_string(i), "5-D", g.sample(200, rng)});
  auto path = dir.path / "overview.png";
  plot_overview(path, g, panels, 2, 200);
  auto img = read_png(path);
  EXPECT_EQ(img.width, 400);
  EXPECT_EQ(img.height, 400);
  // Panel (1, 0) has its own mode crosses at the projected means.
  auto fr = panel_frame(g, 200, 200);
  auto m = fr.to_pixel(pm[1][0].item<double>(), pm[1][1].item<double>());
  EXPECT_TRUE(reddish(img.rgb(200 + m[0], m[1])));
  // The empty fourth cell stays white.
  EXPECT_EQ(img.rgb(300, 300), (std::array<int, 3>{255, 255, 255}));
}

TEST(PlotScatter, BadPathsAndShapesThrow) {
  auto g = three_modes();
  const std::string bad = "/nonexistent-retort-dir/sub/plot.png";
  try {
    plot_samples(bad, g, {"t", "", {}}, 128);
    ADD_FAILURE() << "no IoError";
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find(bad), std::string::npos) << e.what();
  }
  test::TempDir dir("plot-bad");
  auto path = (dir.path / "x.png").string();
  EXPECT_THROW(plot_samples(path, g, {"t", "", torch::zeros({10, 3})}, 128), Error);
  EXPECT_THROW(plot_overview(path, g, {}, 2), Error);
  EXPECT_THROW(plot_overview(path, g, {{"t", "", {}}}, 0), Error);
  MixtureComponent m1;
  m1.mean = {0.0};
  m1.cov = {{1.0}};
  GaussianMixture one_d(std::vector<MixtureComponent>{m1});
  EXPECT_THROW(plot_samples(path, one_d, {"t", "", {}}, 128), Error);
}

}  // namespace
}  // namespace retort
