#include <gtest/gtest.h>
#include <stb/stb_image.h>

#include <cmath>
#include <fstream>
#include <random>

#include "retort/core/config.h"
#include "retort/core/error.h"
#include "retort/io/safetensors.h"
#include "retort/render/camera.h"
#include "retort/render/prompt.h"
#include "retort/render/world.h"
#include "retort/render/world_dataset.h"
#include "test_util.h"

namespace retort {
namespace {

namespace fs = std::filesystem;
constexpr double kDeg = M_PI / 180.0;

Vec3 col(const torch::Tensor& m, int c) {
  return {m[0][c].item<double>(), m[1][c].item<double>(), m[2][c].item<double>()};
}

void expect_near(const Vec3& a, const Vec3& b, double tol) {
  EXPECT_NEAR(a.x, b.x, tol);
  EXPECT_NEAR(a.y, b.y, tol);
  EXPECT_NEAR(a.z, b.z, tol);
}

// ---------------------------------------------------------------- camera

TEST(Camera, FrontCameraSitsOnPlusXWithOpenGLAxes) {
  auto cam = look_at_origin(0, 0, 2, 50);
  ASSERT_EQ(cam.c2w.sizes(), (std::vector<int64_t>{4, 4}));
  EXPECT_EQ(cam.c2w.scalar_type(), torch::kFloat);
  expect_near(col(cam.c2w, 0), {0, 1, 0}, 1e-6);  // right
  expect_near(col(cam.c2w, 1), {0, 0, 1}, 1e-6);  // up
  expect_near(col(cam.c2w, 2), {1, 0, 0}, 1e-6);  // back
  expect_near(col(cam.c2w, 3), {2, 0, 0}, 1e-6);  // position
  EXPECT_NEAR(test::max_abs_diff(cam.c2w[3], torch::tensor({0.f, 0.f, 0.f, 1.f})), 0, 0);
  auto v = camera_vector(cam);
  ASSERT_EQ(v.sizes(), (std::vector<int64_t>{12}));
  EXPECT_NEAR(test::max_abs_diff(v, cam.c2w.narrow(0, 0, 3).reshape({12})), 0, 0);
  EXPECT_FLOAT_EQ(v[3].item<float>(), 2.f);  // row-major: x of the position is the 4th entry
}

TEST(Camera, FrameIsOrthonormalRightHandedEverywhereIncludingPoles) {
  for (double el : {-90.0, -45.0, 0.0, 30.0, 89.9, 90.0})
    for (double az : {0.0, 77.0, 180.0, 300.0}) {
      auto m = look_at_origin(az, el, 1.3, 60).c2w.to(torch::kDouble);
      auto r = m.narrow(0, 0, 3).narrow(1, 0, 3);
      EXPECT_LT(test::max_abs_diff(r.t().mm(r), torch::eye(3, torch::kDouble)), 1e-6) << az << " " << el;
      EXPECT_NEAR(torch::det(r).item<double>(), 1.0, 1e-6);
      // back is the unit position vector, and the camera looks at the origin
      expect_near(col(m, 2) * 1.3, col(m, 3), 1e-6);
      EXPECT_NEAR(length(col(m, 3)), 1.3, 1e-6);
    }
}

TEST(Camera, SphericalRoundTrip) {
  for (double el : {-90.0, -10.0, 0.0, 44.0, 80.0, 90.0})
    for (double az : {0.0, 10.0, 135.0, 181.0, 359.0}) {
      auto s = spherical_from_c2w(look_at_origin(az, el, 1.25, 45).c2w);
      EXPECT_NEAR(s.elevation_deg, el, 1e-3);
      EXPECT_NEAR(s.distance, 1.25, 1e-5);
      const double daz = std::remainder(s.azimuth_deg - az, 360.0);
      EXPECT_NEAR(daz, 0, 2e-3) << "az " << az << " el " << el << " got " << s.azimuth_deg;
      EXPECT_GE(s.azimuth_deg, 0);
      EXPECT_LT(s.azimuth_deg, 360);
    }
}

TEST(Camera, ProjectThenCastRayHitsThePoint) {
  std::mt19937_64 rng(7);
  const int64_t res = 40;
  auto cams = sample_cameras(CameraRanges{}, 20, rng);
  auto pts = torch::rand({50, 3}, torch::kDouble) - 0.5;  // inside the object box
  for (const auto& cam : cams) {
    auto pr = project(cam, pts, res);
    auto b = camera_basis(cam, res);
    for (int64_t k = 0; k < pts.size(0); ++k) {
      const Vec3 p{pts[k][0].item<double>(), pts[k][1].item<double>(), pts[k][2].item<double>()};
      EXPECT_GT(pr.depth[k].item<float>(), 0);
      const Vec3 d = b.direction(pr.pixels[k][0].item<double>(), pr.pixels[k][1].item<double>());
      const Vec3 on_ray = b.position + d * length(p - b.position);
      EXPECT_LT(length(on_ray - p), 1e-4);
      EXPECT_NEAR(pr.depth[k].item<double>(), -dot(p - b.position, b.back), 1e-5);
    }
  }
}

TEST(Camera, RaysThroughPixelCentresProjectBackToThem) {
  auto cam = look_at_origin(30, 20, 1.4, 55);
  const int64_t res = 16;
  auto rays = camera_rays(cam, res);
  ASSERT_EQ(rays.dirs.sizes(), (std::vector<int64_t>{res * res, 3}));
  EXPECT_LT((rays.dirs.norm(2, 1) - 1).abs().max().item<float>(), 1e-6);
  for (auto [i, j] : {std::pair{0, 0}, {0, 15}, {7, 3}, {15, 15}}) {
    const int64_t k = i * res + j;
    auto p = (rays.origins[k] + 0.9 * rays.dirs[k]).unsqueeze(0);
    auto pr = project(cam, p, res);
    EXPECT_NEAR(pr.pixels[0][0].item<float>(), j + 0.5, 1e-3);
    EXPECT_NEAR(pr.pixels[0][1].item<float>(), i + 0.5, 1e-3);
  }
  // Row 0 is the top: a point above the origin lands in the upper half; +y is to the camera's right
  // when it looks from +x.
  auto front = look_at_origin(0, 0, 1.5, 50);
  auto pr = project(front, torch::tensor({{0.0, 0.0, 0.2}, {0.0, 0.2, 0.0}}), res);
  EXPECT_LT(pr.pixels[0][1].item<float>(), res / 2.0);
  EXPECT_NEAR(pr.pixels[0][0].item<float>(), res / 2.0, 1e-4);
  EXPECT_GT(pr.pixels[1][0].item<float>(), res / 2.0);
}

TEST(Camera, ViewBoundaries) {
  EXPECT_EQ(view_of(0, 0), View::front);
  EXPECT_EQ(view_of(45, 0), View::front);
  EXPECT_EQ(view_of(-45, 0), View::front);
  EXPECT_EQ(view_of(315, 0), View::front);  // wraps to -45
  EXPECT_EQ(view_of(360, 10), View::front);
  EXPECT_EQ(view_of(45.01, 0), View::side);
  EXPECT_EQ(view_of(90, 30), View::side);
  EXPECT_EQ(view_of(-134.99, 0), View::side);
  EXPECT_EQ(view_of(135, 0), View::back);
  EXPECT_EQ(view_of(180, 0), View::back);
  EXPECT_EQ(view_of(-180, 0), View::back);
  EXPECT_EQ(view_of(225, 0), View::back);
  EXPECT_EQ(view_of(0, 60), View::front);  // overhead needs el > 60
  EXPECT_EQ(view_of(0, 60.01), View::overhead);
  EXPECT_EQ(view_of(180, 90), View::overhead);
  EXPECT_EQ(view_name(View::overhead), "overhead");
}

TEST(Camera, SamplingIsSeededAndInRange) {
  std::mt19937_64 a(11), b(11), c(12);
  CameraRanges r;
  auto ca = sample_cameras(r, 200, a), cb = sample_cameras(r, 200, b), cc = sample_cameras(r, 200, c);
  for (size_t k = 0; k < ca.size(); ++k) {
    EXPECT_TRUE(torch::equal(ca[k].c2w, cb[k].c2w));
    EXPECT_GE(ca[k].azimuth_deg, 0);
    EXPECT_LT(ca[k].azimuth_deg, 360);
    EXPECT_GE(ca[k].elevation_deg, -10);
    EXPECT_LE(ca[k].elevation_deg, 45);
    EXPECT_GE(ca[k].distance, 1.0);
    EXPECT_LE(ca[k].distance, 1.5);
    EXPECT_GE(ca[k].fovy_deg, 40);
    EXPECT_LE(ca[k].fovy_deg, 70);
  }
  EXPECT_FALSE(torch::equal(ca[0].c2w, cc[0].c2w));
}

// ---------------------------------------------------------------- render

TEST(Render, SphereSilhouetteMatchesAnalyticArea) {
  const int64_t res = 96;
  for (auto [az, el, d, fovy] : {std::tuple{0.0, 0.0, 1.2, 50.0}, {200.0, 40.0, 1.0, 40.0}, {90.0, -10.0, 1.5, 70.0}}) {
    auto cam = look_at_origin(az, el, d, fovy);
    auto r = render_object({Shape::sphere, Colour::blue, 1.0}, cam, res);
    const double f = (res / 2.0) / std::tan(fovy * kDeg / 2);
    const double radius_px = f * std::tan(std::asin(kSphereRadius / d));
    const double want = M_PI * radius_px * radius_px;
    const double got = r.alpha.sum().item<double>();
    EXPECT_NEAR(got / want, 1.0, 0.02) << "az " << az << " got " << got << " want " << want;
  }
}

TEST(Render, DepthOnTheOpticalAxisIsDistanceMinusRadius) {
  const int64_t res = 33;  // odd: the centre pixel's ray is the optical axis
  RenderOptions opts;
  opts.supersample = false;
  opts.background = {0.2, 0.4, 0.6};
  for (double d : {1.0, 1.3}) {
    auto r = render_object({Shape::sphere, Colour::red, 1.0}, look_at_origin(70, 25, d, 45), res, opts);
    EXPECT_NEAR(r.depth[16][16].item<double>(), d - kSphereRadius, 2e-4);
    EXPECT_TRUE(std::isinf(r.depth[0][0].item<float>()));
    EXPECT_FLOAT_EQ(r.alpha[0][0].item<float>(), 0.f);
    EXPECT_FLOAT_EQ(r.image[2][0][0].item<float>(), 0.6f);
  }
  auto half = render_object({Shape::sphere, Colour::red, 0.9}, look_at_origin(0, 0, 1.2, 45), res, opts);
  EXPECT_NEAR(half.depth[16][16].item<double>(), 1.2 - 0.9 * kSphereRadius, 2e-4);
}

TEST(Render, LambertShadingAtTheSphereCentre) {
  RenderOptions opts;
  opts.supersample = false;
  auto cam = look_at_origin(0, 0, 1.2, 45);
  const Vec3 red = colour_rgb(Colour::red);
  opts.light = Vec3{1, 0, 0};  // from the camera: the centre normal faces it, n.l = 1
  auto lit = render_object({Shape::sphere, Colour::red, 1.0}, cam, 33, opts);
  EXPECT_NEAR(lit.image[0][16][16].item<double>(), red.x, 1e-3);
  EXPECT_NEAR(lit.image[1][16][16].item<double>(), red.y, 1e-3);
  opts.light = Vec3{-1, 0, 0};  // from behind: ambient only
  auto dark = render_object({Shape::sphere, Colour::red, 1.0}, cam, 33, opts);
  EXPECT_NEAR(dark.image[0][16][16].item<double>(), red.x * opts.ambient, 1e-3);
  // Off-centre points on the lit sphere turn away from the light and get darker.
  EXPECT_LT(lit.image[0][16][26].item<double>(), lit.image[0][16][16].item<double>() - 0.05);
}

TEST(Render, SupersamplingGivesFractionalEdges) {
  auto cam = look_at_origin(20, 10, 1.2, 50);
  RenderOptions one;
  one.supersample = false;
  auto hard = render_object({Shape::torus, Colour::green, 1.0}, cam, 32, one);
  auto soft = render_object({Shape::torus, Colour::green, 1.0}, cam, 32);
  auto frac = [](const torch::Tensor& a) { return ((a > 0) & (a < 1)).sum().item<int64_t>(); };
  EXPECT_EQ(frac(hard.alpha), 0);
  EXPECT_GT(frac(soft.alpha), 10);
  EXPECT_GE(soft.image.min().item<float>(), 0.f);
  EXPECT_LE(soft.image.max().item<float>(), 1.f);
}

TEST(Render, ShapesStayInsideTheBoundAndSdfsAreOneLipschitz) {
  std::mt19937_64 rng(3);
  auto u = [&] { return uniform01(rng) - 0.5; };
  for (int64_t s = 0; s < kNumShapes; ++s) {
    const Shape shape = Shape(s);
    const double bound = bounding_radius(shape);
    EXPECT_LE(bound, 0.35) << shape_name(shape);
    int inside = 0;
    for (int k = 0; k < 20000; ++k) {
      const Vec3 p{u(), u(), u()}, q{u(), u(), u()};
      const double dp = shape_sdf(shape, p);
      if (dp < 0) {
        ++inside;
        EXPECT_LE(length(p), bound + 1e-9) << shape_name(shape);
      }
      EXPECT_LE(std::abs(dp - shape_sdf(shape, q)), length(p - q) + 1e-9) << shape_name(shape);
    }
    EXPECT_GT(inside, 200) << shape_name(shape);  // the shape is not degenerate
    // The bound is tight: some surface point lies within 2% of it.
    double best = 0;
    for (int k = 0; k < 200000; ++k) {
      const Vec3 p = normalize(Vec3{u(), u(), u()}) * (bound * 0.98);
      if (shape_sdf(shape, p) < 0) best = 1;
    }
    EXPECT_EQ(best, 1) << shape_name(shape);
  }
}

TEST(Render, ShapesAreUprightAlongZ) {
  // Seen from the side, a capsule is tall and a torus is flat.
  auto cam = look_at_origin(0, 0, 1.3, 50);
  auto extent = [&](Shape s) {
    RenderOptions o;
    o.supersample = false;
    auto a = render_object({s, Colour::grey, 1.0}, cam, 48, o).alpha;
    const auto rows = (a.sum(1) > 0).sum().item<int64_t>(), cols = (a.sum(0) > 0).sum().item<int64_t>();
    return std::pair{rows, cols};
  };
  auto [cap_rows, cap_cols] = extent(Shape::capsule);
  auto [tor_rows, tor_cols] = extent(Shape::torus);
  EXPECT_GT(cap_rows, cap_cols * 3 / 2);
  EXPECT_GT(tor_cols, tor_rows * 2);
}

// ---------------------------------------------------------------- prompt

TEST(Prompt, ParsesVariants) {
  auto p = parse_prompt("a red torus");
  EXPECT_EQ(p.shape, Shape::torus);
  EXPECT_EQ(p.colour, Colour::red);
  EXPECT_FALSE(p.view);
  p = parse_prompt("  An   ORANGE cube ,  Side View ");
  EXPECT_EQ(p.shape, Shape::cube);
  EXPECT_EQ(p.colour, Colour::orange);
  ASSERT_TRUE(p.view);
  EXPECT_EQ(*p.view, View::side);
  p = parse_prompt("blue cone, overhead");
  EXPECT_EQ(*p.view, View::overhead);
  EXPECT_EQ(parse_prompt("a gray capsule").colour, Colour::grey);
  EXPECT_EQ(prompt_text(parse_prompt("a red torus, side view")), "a red torus, side view");
  EXPECT_EQ(prompt_text({Shape::cube, Colour::orange, View::back}), "an orange cube, back view");
}

TEST(Prompt, UnknownWordIsNamedWithTheVocabulary) {
  auto msg = test::error_of<Error>([] { parse_prompt("a magenta torus"); });
  EXPECT_NE(msg.find("'magenta'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("purple"), std::string::npos) << msg;
  EXPECT_NE(msg.find("capsule"), std::string::npos) << msg;
  EXPECT_NE(msg.find("overhead"), std::string::npos) << msg;
  msg = test::error_of<Error>([] { parse_prompt("a red torus, top view"); });
  EXPECT_NE(msg.find("'top'"), std::string::npos) << msg;
  for (auto bad : {"a torus red", "a red", "", "a red torus,", "a red torus side front", "red red torus"})
    EXPECT_THROW(parse_prompt(bad), Error) << bad;
}

TEST(Prompt, ClassIdsRoundTripThroughText) {
  EXPECT_EQ(object_class(Shape::torus, Colour::red), 16);
  EXPECT_EQ(prompt_class(Shape::torus, Colour::red, View::side), 65);
  auto names = prompt_class_names();
  ASSERT_EQ(int64_t(names.size()), kNumPromptClasses);
  for (int64_t id = 0; id < kNumPromptClasses; ++id) {
    auto p = parse_prompt(names[size_t(id)]);
    EXPECT_EQ(prompt_class(p.shape, p.colour, *p.view), id) << names[size_t(id)];
    EXPECT_EQ(prompt_from_prompt_class(id).view, p.view);
  }
  auto objects = object_class_names();
  ASSERT_EQ(int64_t(objects.size()), kNumObjectClasses);
  for (int64_t id = 0; id < kNumObjectClasses; ++id) {
    auto p = parse_prompt(objects[size_t(id)]);
    EXPECT_FALSE(p.view);
    EXPECT_EQ(object_class(p.shape, p.colour), id);
  }
  EXPECT_THROW(prompt_from_prompt_class(192), Error);
  EXPECT_THROW(prompt_from_object_class(-1), Error);
}

// ---------------------------------------------------------------- data set

WorldDatasetOptions tiny(uint64_t seed = 3) {
  WorldDatasetOptions o;
  o.n = 24;
  o.resolution = 16;
  o.seed = seed;
  return o;
}

TEST(WorldDataset, WriteLoadRoundTrip) {
  test::TempDir tmp("world-rt");
  const auto file = tmp.path / "w.safetensors";
  render_world_dataset(tiny(), file, false);
  EXPECT_FALSE(fs::exists(file.string() + ".tmp"));
  auto w = load_world_dataset(file, "prompt");
  ASSERT_EQ(w.data.images.sizes(), (std::vector<int64_t>{24, 3, 16, 16}));
  EXPECT_EQ(w.resolution, 16);
  EXPECT_EQ(w.data.num_classes, 192);
  EXPECT_GE(w.data.images.min().item<float>(), -1.f);
  EXPECT_LE(w.data.images.max().item<float>(), 1.f);
  // At distance >= 1 with fovy >= 40 the object never reaches the corners: they are background.
  auto corners = w.data.images.index({torch::indexing::Slice(), torch::indexing::Slice(), 0, 0});
  EXPECT_EQ(corners.min().item<float>(), 1.f);
  // ...and every image shows an object (not all background).
  EXPECT_LT(w.data.images.amin({1, 2, 3}).max().item<float>(), 0.9f);
  for (int64_t k = 0; k < 24; ++k) {
    const auto s = Shape(w.shape[k].item<int64_t>());
    const auto c = Colour(w.colour[k].item<int64_t>());
    const auto v = View(w.view[k].item<int64_t>());
    EXPECT_EQ(w.data.labels[k].item<int64_t>(), prompt_class(s, c, v));
    EXPECT_EQ(v, view_of(w.azimuth[k].item<float>(), w.elevation[k].item<float>()));
    auto cam = look_at_origin(w.azimuth[k].item<double>(), w.elevation[k].item<double>(),
                              w.distance[k].item<double>(), w.fovy[k].item<double>());
    EXPECT_LT(test::max_abs_diff(camera_vector(cam), w.cameras[k]), 1e-5);
  }
  auto obj = load_world_dataset(file, "object");
  EXPECT_EQ(obj.data.num_classes, 48);
  EXPECT_TRUE(torch::equal(obj.data.labels, w.shape * 8 + w.colour));
  EXPECT_THROW(load_world_dataset(file, "view"), Error);

  // Seeded: the same seed gives the same bytes (whatever the thread count), another seed does not.
  const int threads = at::get_num_threads();
  at::set_num_threads(2);
  render_world_dataset(tiny(), tmp.path / "again.safetensors", false);
  at::set_num_threads(threads);
  render_world_dataset(tiny(4), tmp.path / "other.safetensors", false);
  auto again = load_world_dataset(tmp.path / "again.safetensors");
  auto other = load_world_dataset(tmp.path / "other.safetensors");
  EXPECT_TRUE(torch::equal(again.data.images, w.data.images));
  EXPECT_FALSE(torch::equal(other.data.images, w.data.images));

  write_world_preview(tmp.path / "p.png", w, 5);
  int pw = 0, ph = 0, pc = 0;
  ASSERT_TRUE(stbi_info((tmp.path / "p.png").c_str(), &pw, &ph, &pc));
  EXPECT_EQ(pw, 5 * 18 + 2);
  EXPECT_EQ(ph, int(kNumShapes) * 18 + 2);
}

TEST(WorldDataset, BadFilesAreIoErrorsNamingTheFile) {
  test::TempDir tmp("world-bad");
  const auto good = tmp.path / "good.safetensors";
  render_world_dataset(tiny(), good, false);
  auto expect_io = [&](const fs::path& p, const std::string& detail) {
    auto msg = test::io_error([&] { load_world_dataset(p); });
    EXPECT_NE(msg.find(p.string()), std::string::npos) << msg;
    EXPECT_NE(msg.find(detail), std::string::npos) << msg;
  };
  expect_io(tmp.path / "missing.safetensors", "");

  const auto size = fs::file_size(good);
  fs::copy_file(good, tmp.path / "cut.safetensors");
  fs::resize_file(tmp.path / "cut.safetensors", size / 2);
  expect_io(tmp.path / "cut.safetensors", "");
  {
    std::ofstream junk(tmp.path / "junk.safetensors", std::ios::binary);
    junk << "this is not a safetensors file at all";
  }
  expect_io(tmp.path / "junk.safetensors", "");

  std::map<std::string, std::string> meta;
  const auto tensors = load_safetensors(good, &meta);
  auto variant = [&](const std::string& name, auto edit) {
    auto t = tensors;
    auto m = meta;
    edit(t, m);
    const auto p = tmp.path / (name + ".safetensors");
    save_safetensors(p, t, m);
    return p;
  };
  using T = std::map<std::string, torch::Tensor>;
  using M = std::map<std::string, std::string>;
  expect_io(variant("noview", [](T& t, M&) { t.erase("view"); }), "'view'");
  expect_io(variant("flipview", [](T& t, M&) {
              t["view"] = t["view"].clone();
              t["view"][0] = (t["view"][0].item<int64_t>() + 1) % 4;
            }), "view");
  expect_io(variant("shortcam", [](T& t, M&) { t["camera"] = t["camera"].narrow(0, 0, 5).clone(); }), "'camera'");
  expect_io(variant("movedcam", [](T& t, M&) {
              t["camera"] = t["camera"].clone();
              t["camera"][2][3] += 0.5;
            }), "camera positions");
  expect_io(variant("badshape", [](T& t, M&) {
              t["shape"] = t["shape"].clone();
              t["shape"][1] = 6;
            }), "'shape'");
  expect_io(variant("res", [](T&, M& m) { m["resolution"] = "32"; }), "resolution");
  expect_io(variant("vocab", [](T&, M& m) { m["colours"] = "red,green"; }), "colours");
  expect_io(variant("floatimg", [](T& t, M&) { t["images"] = t["images"].to(torch::kFloat); }), "'images'");
}

TEST(WorldDataset, ConfigIsReadStrictly) {
  auto read = [](const std::string& body) {
    auto root = ConfigNode::from_string("[world]\n" + body, "w.toml");
    auto o = read_world_options(root.table("world"));
    root.finish();
    return o;
  };
  auto o = read("n = 100\nresolution = 16\nseed = 5\nelevation = [0, 30]\nbackground = [0, 0, 0]\nsupersample = false");
  EXPECT_EQ(o.n, 100);
  EXPECT_EQ(o.resolution, 16);
  EXPECT_EQ(o.seed, 5u);
  EXPECT_EQ(o.cameras.elevation[1], 30);
  EXPECT_EQ(o.background.y, 0);
  EXPECT_FALSE(o.supersample);
  auto d = read("");
  EXPECT_EQ(d.n, 20000);
  EXPECT_EQ(d.resolution, 32);
  EXPECT_EQ(d.cameras.elevation[1], 80);
  EXPECT_EQ(d.cameras.fovy[0], 40);

  auto config_error = [&](const std::string& body, std::vector<std::string> parts) {
    auto msg = test::error_of<ConfigError>([&] { read(body); });
    for (const auto& p : parts) EXPECT_NE(msg.find(p), std::string::npos) << body << " -> " << msg;
  };
  config_error("resolution = 4", {"w.toml", "world.resolution", "4"});
  config_error("resolution = 200", {"world.resolution", "200"});
  config_error("n = 0", {"world.n", "0"});
  config_error("n = \"many\"", {"world.n"});
  config_error("elevation = [50, 10]", {"world.elevation", "50", "10"});
  config_error("elevation = [0, 95]", {"world.elevation", "95"});
  config_error("distance = [0.2, 1.0]", {"world.distance", "0.2"});
  config_error("fovy = [40]", {"world.fovy", "1 number"});
  config_error("background = [1, 1]", {"world.background"});
  config_error("background = [1, 2, 1]", {"world.background", "2"});
  config_error("resolutoin = 32", {"world.resolutoin", "unknown key"});
}

TEST(WorldDataset, RenderWorldCommandWritesDataAndPreview) {
  test::TempDir tmp("world-cmd");
  {
    std::ofstream cfg(tmp.path / "w.toml");
    cfg << "[world]\nn = 12\nresolution = 8\nseed = 1\n";
  }
  const auto summary = run_render_world(tmp.path / "w.toml", tmp.path / "out", false);
  EXPECT_NE(summary.find("12 images at 8 px"), std::string::npos) << summary;
  EXPECT_TRUE(fs::exists(tmp.path / "out" / "preview.png"));
  EXPECT_TRUE(fs::exists(tmp.path / "out" / "config.resolved.toml"));
  EXPECT_EQ(load_world_dataset(tmp.path / "out" / "world.safetensors").data.images.size(0), 12);
  {
    std::ofstream cfg(tmp.path / "bad.toml");
    cfg << "[world]\nn = 12\n[data]\nsource = \"idx\"\n";
  }
  EXPECT_THROW(run_render_world(tmp.path / "bad.toml", tmp.path / "out2", false), ConfigError);
  EXPECT_FALSE(fs::exists(tmp.path / "out2"));
}

}  // namespace
}  // namespace retort
