#include <gtest/gtest.h>

#include <ATen/Parallel.h>
#include <fmt/format.h>

#include <cmath>
#include <fstream>
#include <iostream>
#include <random>
#include <sstream>

#include "retort/core/config.h"
#include "retort/core/error.h"
#include "retort/io/safetensors.h"
#include "retort/nvs/point_cloud.h"
#include "retort/nvs/scene.h"
#include "retort/nvs/scene_dataset.h"
#include "retort/nvs/trajectory.h"
#include "test_util.h"

namespace retort {
namespace {

namespace fs = std::filesystem;
using torch::indexing::Slice;

Scene nvs_one_object(Shape s, Ground g = Ground::none, double x = 0, double y = 0) {
  Scene sc;
  sc.objects.push_back({{s, Colour::blue, 1.0}, x, y, 0});
  sc.ground = g;
  sc.light = normalize(Vec3{1, 0.5, 1});
  return sc;
}

SceneRenderOptions nvs_sharp() {
  SceneRenderOptions o;
  o.supersample = false;
  return o;
}

// ---------------------------------------------------------------- scenes

TEST(NvsScene, ShapesStandOnTheGround) {
  for (int64_t s = 0; s < kNumShapes; ++s) {
    const double b = shape_bottom(Shape(s));
    EXPECT_LT(b, -0.05) << shape_name(Shape(s));
    EXPECT_GT(b, -0.36) << shape_name(Shape(s));
    // Nothing of the shape lies below its bottom; something lies just above it.
    bool above = false;
    for (int i = -40; i <= 40; ++i)
      for (int j = -40; j <= 40; ++j) {
        const Vec3 p{0.36 * i / 40, 0.36 * j / 40, b - 1e-4};
        EXPECT_GT(shape_sdf(Shape(s), p), 0) << shape_name(Shape(s));
        if (shape_sdf(Shape(s), Vec3{p.x, p.y, b + 2e-3}) < 0) above = true;
      }
    EXPECT_TRUE(above) << shape_name(Shape(s));
  }
  // The footprint circle holds the shape at every height and angle, and is tight.
  std::mt19937_64 rng(2);
  for (int64_t s = 0; s < kNumShapes; ++s) {
    const double r = shape_footprint(Shape(s));
    EXPECT_LE(r, bounding_radius(Shape(s)) + 0.006) << shape_name(Shape(s));
    bool near = false;
    for (int k = 0; k < 20000; ++k) {
      const double a = 2 * M_PI * uniform01(rng), z = 0.72 * uniform01(rng) - 0.36;
      EXPECT_GT(shape_sdf(Shape(s), Vec3{r * std::cos(a), r * std::sin(a), z}), 0) << shape_name(Shape(s));
      if (shape_sdf(Shape(s), Vec3{(r - 0.01) * std::cos(a), (r - 0.01) * std::sin(a), z}) < 0) near = true;
    }
    EXPECT_TRUE(near) << shape_name(Shape(s));
  }
  SceneObject o{{Shape::cube, Colour::red, 0.8}, 0.1, -0.2, 30};
  const Vec3 c = scene_object_centre(o);
  EXPECT_NEAR(c.z + shape_bottom(Shape::cube) * 0.8, kGroundZ, 1e-12);
}

TEST(NvsScene, RenderShapesAlphaAndDepth) {
  const int64_t R = 16;
  auto cam = look_at_origin(30, 25, 2.2, 45);
  auto bare = render_scene(nvs_one_object(Shape::sphere), cam, R);
  ASSERT_EQ(bare.image.sizes(), (std::vector<int64_t>{3, R, R}));
  ASSERT_EQ(bare.alpha.sizes(), (std::vector<int64_t>{R, R}));
  ASSERT_EQ(bare.depth.sizes(), (std::vector<int64_t>{R, R}));
  EXPECT_GE(bare.image.min().item<float>(), 0.f);
  EXPECT_LE(bare.image.max().item<float>(), 1.f);
  EXPECT_GE(bare.alpha.min().item<float>(), 0.f);
  EXPECT_LE(bare.alpha.max().item<float>(), 1.f);
  EXPECT_TRUE(torch::equal(torch::isinf(bare.depth), bare.alpha == 0));
  EXPECT_GT((bare.alpha == 0).sum().item<int64_t>(), R * R / 2);  // a lone sphere: mostly sky
  auto ground = render_scene(nvs_one_object(Shape::sphere, Ground::checker), cam, R);
  EXPECT_GT(ground.alpha.sum().item<double>(), bare.alpha.sum().item<double>() * 2);
  // The centre pixel sees the sphere either way, at the same z-depth.
  EXPECT_FLOAT_EQ(ground.depth[R / 2][R / 2].item<float>(), bare.depth[R / 2][R / 2].item<float>());
}

TEST(NvsScene, ZDepthIsRayDepthTimesCosine) {
  const int64_t R = 21;
  auto cam = look_at_origin(10, 20, 1.4, 60);
  RenderOptions o;
  o.supersample = false;
  auto r = render_object({Shape::torus, Colour::red, 1.0}, cam, R, o);
  const auto b = camera_basis(cam, R);
  int checked = 0;
  for (int64_t i = 0; i < R; ++i)
    for (int64_t j = 0; j < R; ++j) {
      const double t = r.depth[i][j].item<double>();
      if (!std::isfinite(t)) {
        EXPECT_TRUE(std::isinf(r.z_depth[i][j].item<float>()));
        continue;
      }
      const double cosine = -dot(b.direction(j + 0.5, i + 0.5), b.back);
      EXPECT_NEAR(r.z_depth[i][j].item<double>(), t * cosine, 1e-5);
      ++checked;
    }
  EXPECT_GT(checked, 20);
}

TEST(NvsScene, ObjectsDoNotOverlapAndScenesAreSeeded) {
  SceneDrawOptions o;
  auto cam = look_at_origin(0, 30, 2.3, 45);
  std::mt19937_64 a(5), b(5);
  std::vector<int64_t> counts(4, 0);
  for (int k = 0; k < 200; ++k) {
    auto s = sample_scene(o, cam, a), t = sample_scene(o, cam, b);
    ASSERT_EQ(s.objects.size(), t.objects.size());
    counts[s.objects.size()]++;
    EXPECT_NO_THROW(check_scene(s));
    EXPECT_EQ(s.objects[0].x, t.objects[0].x);
    for (size_t i = 0; i < s.objects.size(); ++i)
      for (size_t j = 0; j < i; ++j)
        EXPECT_GE(std::hypot(s.objects[i].x - s.objects[j].x, s.objects[i].y - s.objects[j].y),
                  shape_footprint(s.objects[i].object.shape) * s.objects[i].object.scale +
                      shape_footprint(s.objects[j].object.shape) * s.objects[j].object.scale);
    EXPECT_EQ(double(float(s.objects[0].x)), s.objects[0].x);  // float32-exact, so files re-render exactly
  }
  EXPECT_GT(counts[1], 30);
  EXPECT_GT(counts[2], 30);
  EXPECT_GT(counts[3], 30);
  Scene bad = nvs_one_object(Shape::sphere);
  bad.objects.push_back({{Shape::cube, Colour::red, 1.0}, 0.1, 0, 0});
  EXPECT_NE(test::error_of<Error>([&] { check_scene(bad); }).find("overlap"), std::string::npos);
}

// ---------------------------------------------------------------- point clouds

// A bool mask grown by one pixel in each direction (3x3).
torch::Tensor dilate(const torch::Tensor& m) {
  return torch::max_pool2d(m.to(torch::kFloat).unsqueeze(0).unsqueeze(0), {3, 3}, {1, 1}, {1, 1})[0][0] > 0;
}

TEST(NvsPointCloud, WarpIntoItsOwnCameraReturnsTheView) {
  const int64_t R = 24;
  Scene s = nvs_one_object(Shape::torus, Ground::checker, 0.1, -0.1);
  s.objects.push_back({{Shape::cone, Colour::yellow, 0.9}, -0.4, 0.35, 0});
  auto cam = look_at_origin(40, 30, 2.0, 45);
  auto r = render_scene(s, cam, R);  // supersampled: edge pixels have fractional alpha
  auto cloud = unproject(r.image, r.depth, cam);
  EXPECT_EQ(cloud.size(), torch::isfinite(r.depth).sum().item<int64_t>());
  for (double footprint : {0.0, 1.0, 1.5}) {
    SplatOptions o;
    o.footprint = footprint;
    auto w = render_points(cloud, {cam}, R, o);
    auto covered = w.masks[0] > 0;
    EXPECT_TRUE(torch::equal(covered, torch::isfinite(r.depth))) << footprint;
    auto m = covered.unsqueeze(0).expand({3, R, R});
    EXPECT_TRUE(torch::equal(w.images[0].masked_select(m), r.image.masked_select(m))) << footprint;
    EXPECT_EQ(w.images[0].masked_select(~m).abs().max().item<float>(), 0.f);  // holes are black
    EXPECT_LT(test::max_abs_diff(w.depth[0].masked_select(covered), r.depth.masked_select(covered)), 1e-4);
  }
}

// A plane z = 0 with a smooth colour, its exact depth from one camera, warped into another: each covered
// pixel shows the plane point its centre ray hits, within about a pixel.
TEST(NvsPointCloud, PlaneSeenFromAShiftedCameraMatchesTheAnalyticRender) {
  const int64_t R = 32;
  auto colour_at = [](double x, double y) { return Vec3{0.5 + 0.5 * std::sin(1.5 * x), 0.5 + 0.5 * std::cos(1.5 * y), 0.5}; };
  auto analytic = [&](const Camera& cam, torch::Tensor& image, torch::Tensor& depth) {
    const auto b = camera_basis(cam, R);
    image = torch::zeros({3, R, R});
    depth = torch::full({R, R}, INFINITY);
    for (int64_t i = 0; i < R; ++i)
      for (int64_t j = 0; j < R; ++j) {
        const Vec3 d = b.direction(j + 0.5, i + 0.5);
        if (d.z >= 0) continue;
        const double t = -b.position.z / d.z;
        const Vec3 p = b.position + d * t;
        if (std::hypot(p.x, p.y) > 1.2) continue;  // a finite plane, so its edge shows
        const Vec3 c = colour_at(p.x, p.y);
        image[0][i][j] = c.x, image[1][i][j] = c.y, image[2][i][j] = c.z;
        depth[i][j] = -t * dot(d, b.back);
      }
  };
  auto cam1 = look_at_origin(0, 40, 2.0, 50), cam2 = look_at_origin(20, 28, 1.7, 50);
  torch::Tensor img1, d1, img2, d2;
  analytic(cam1, img1, d1);
  analytic(cam2, img2, d2);
  auto cloud = unproject(img1, d1, cam1);
  EXPECT_LT(cloud.points.select(1, 2).abs().max().item<float>(), 1e-5);  // the points lie on the plane
  auto w = render_points(cloud, {cam2}, R);
  auto covered = w.masks[0] > 0, plane = torch::isfinite(d2);
  // Points land on the plane, or (splats at its edge) within a pixel of it.
  EXPECT_TRUE(dilate(plane).masked_select(covered).all().item<bool>());
  EXPECT_LT((covered & ~plane).sum().item<int64_t>(), 40);
  // Covered plane pixels show it at its depth and in its colour, up to the splat's offset of at most
  // 0.75 px (footprint 1.5): that is large in depth where the plane is seen at a grazing angle, and
  // biased towards the camera (of the overlapping splats the nearest wins; about 5% depth per pixel here).
  auto both = covered & plane;
  auto dd = ((w.depth[0] - d2).abs() / d2).masked_select(both);
  auto dc = (w.images[0] - img2).abs().amax(0).masked_select(both);
  std::cout << "plane warp: relative depth error max " << dd.max().item<float>() << " mean " << dd.mean().item<float>()
            << "; colour error max " << dc.max().item<float>() << " mean " << dc.mean().item<float>() << "\n";
  EXPECT_LT(dd.max().item<float>(), 0.1);
  EXPECT_LT(dd.mean().item<float>(), 0.035);
  EXPECT_LT(dc.max().item<float>(), 0.2);
  EXPECT_LT(dc.mean().item<float>(), 0.03);
  // The plane's middle, seen by both cameras, is covered without cracks.
  EXPECT_TRUE(covered.index({Slice(10, 22), Slice(10, 22)}).all().item<bool>());
  // Zooming in (cam2 is closer) with one pixel per point leaves cracks; the footprint closes them.
  SplatOptions one;
  one.footprint = 0;
  auto cracked = render_points(cloud, {cam2}, R, one);
  EXPECT_LT(cracked.masks[0].sum().item<double>(), w.masks[0].sum().item<double>());
}

// A sphere from one camera, warped to a camera 70 degrees round: its points sit on the sphere, the
// part the input saw is drawn at the right depth, the part it could not see is a hole.
TEST(NvsPointCloud, SphereWarpedRoundLeavesTheUnseenSideAsAHole) {
  const int64_t R = 32;
  Scene s = nvs_one_object(Shape::sphere);
  const Vec3 c = scene_object_centre(s.objects[0]);
  auto cam1 = look_at_origin(0, 10, 1.6, 40), cam2 = look_at_origin(70, 10, 1.6, 40);
  auto r = render_scene(s, cam1, R, nvs_sharp());
  auto cloud = unproject(r.image, r.depth, cam1);
  ASSERT_GT(cloud.size(), 100);
  auto rel = cloud.points - torch::tensor({float(c.x), float(c.y), float(c.z)});
  EXPECT_LT((rel.norm(2, 1) - kSphereRadius).abs().max().item<float>(), 2e-3);
  auto w = render_points(cloud, {cam2}, R);
  const auto b = camera_basis(cam2, R), b1 = camera_basis(cam1, R);
  int seen = 0, seen_covered = 0, unseen = 0, unseen_covered = 0;
  double depth_error = 0;
  auto silhouette = torch::zeros({R, R}, torch::kBool);
  for (int64_t i = 0; i < R; ++i)
    for (int64_t j = 0; j < R; ++j) {
      const Vec3 d = b.direction(j + 0.5, i + 0.5), oc = b.position - c;
      const double bb = dot(oc, d), disc = bb * bb - (dot(oc, oc) - kSphereRadius * kSphereRadius);
      if (disc < 0) continue;
      silhouette[i][j] = true;
      const bool cov = w.masks[0][i][j].item<float>() > 0;
      const double t = -bb - std::sqrt(disc);
      const Vec3 p = b.position + d * t, n = normalize(p - c);
      const double facing = dot(n, normalize(b1.position - p));  // > 0: cam1 saw this point
      // Well inside the silhouette (the depth changes little across a splat) and seen face-on enough.
      if (facing > 0.25 && disc > 0.03) {
        ++seen;
        seen_covered += cov;
        if (cov) {
          const double err = std::abs(w.depth[0][i][j].item<double>() - (-t * dot(d, b.back)));
          EXPECT_LT(err, 0.06) << i << "," << j;
          depth_error += err;
        }
      } else if (facing < -0.1) {
        ++unseen;
        unseen_covered += cov;
      }
    }
  EXPECT_TRUE(dilate(silhouette).masked_select(w.masks[0] > 0).all().item<bool>());  // nothing lands off it
  EXPECT_GT(seen, 20);
  EXPECT_GT(unseen, 20);
  EXPECT_GE(seen_covered, seen * 9 / 10);
  EXPECT_LT(depth_error / std::max(seen_covered, 1), 0.015);
  EXPECT_EQ(unseen_covered, 0);
}

TEST(NvsPointCloud, DepthPerturbationAndPly) {
  auto d = torch::full({8, 8}, 2.0f);
  d[0][0] = INFINITY;
  std::mt19937_64 rng(1);
  auto same = perturb_depths({d}, 0, 0, rng)[0];
  EXPECT_TRUE(torch::equal(same, d));
  auto scaled = perturb_depths({d, d * 2}, 0, 0.2, rng);
  const float ratio = scaled[0][1][1].item<float>() / 2.0f;
  EXPECT_NE(ratio, 1.f);
  EXPECT_GE(ratio, 0.8f);
  EXPECT_LE(ratio, 1.2f);
  EXPECT_NEAR(scaled[1][3][3].item<float>(), 4.0f * ratio, 1e-5);  // one factor for every view of a call
  EXPECT_TRUE(std::isinf(scaled[0][0][0].item<float>()));
  auto noisy = perturb_depths({d}, 0.05, 0, rng)[0];
  auto fin = torch::isfinite(noisy);
  const double sd = (noisy.masked_select(fin) / 2 - 1).std().item<double>();
  EXPECT_GT(sd, 0.03);
  EXPECT_LT(sd, 0.07);
  EXPECT_THROW(perturb_depths({d}, 0.5, 0, rng), Error);

  test::TempDir tmp("nvs-ply");
  auto cam = look_at_origin(0, 20, 2, 45);
  auto r = render_scene(nvs_one_object(Shape::cube, Ground::plain), cam, 8);
  auto cloud = unproject(r.image, r.depth, cam);
  write_ply(tmp.path / "c.ply", cloud);
  std::ifstream in(tmp.path / "c.ply");
  std::string line;
  std::getline(in, line);
  EXPECT_EQ(line, "ply");
  int64_t vertices = -1, rows = 0;
  bool body = false;
  while (std::getline(in, line)) {
    if (body) {
      std::istringstream w(line);
      double x, y, z;
      int red, green, blue;
      EXPECT_TRUE(bool(w >> x >> y >> z >> red >> green >> blue)) << line;
      ++rows;
    }
    if (line.rfind("element vertex ", 0) == 0) vertices = std::stoll(line.substr(15));
    if (line == "end_header") body = true;
  }
  EXPECT_EQ(vertices, cloud.size());
  EXPECT_EQ(rows, cloud.size());
  EXPECT_THROW(write_ply("/proc/version/x.ply", cloud), IoError);
}

// ---------------------------------------------------------------- trajectories

TEST(NvsTrajectory, OffsetsStartAtTheInputAndReachTheOffset) {
  auto input = look_at_origin(350, 30, 2.0, 45);
  auto cams = offset_trajectory(input, {40, 20, -0.25}, 5, {5, 45});
  ASSERT_EQ(cams.size(), 5u);
  EXPECT_TRUE(torch::equal(cams[0].c2w, input.c2w));
  auto last = spherical_from_c2w(cams[4].c2w);
  EXPECT_NEAR(std::remainder(last.azimuth_deg - 30, 360), 0, 1e-3);
  EXPECT_NEAR(last.elevation_deg, 45, 1e-3);  // 30 + 20 clamped to 45
  EXPECT_NEAR(last.distance, 1.5, 1e-5);
  auto mid = spherical_from_c2w(cams[2].c2w);
  EXPECT_NEAR(std::remainder(mid.azimuth_deg - 10, 360), 0, 1e-3);
  EXPECT_NEAR(mid.elevation_deg, 40, 1e-3);
  EXPECT_NEAR(mid.distance, 1.75, 1e-5);
  for (const auto& c : cams) EXPECT_EQ(c.fovy_deg, 45);
  EXPECT_THROW(offset_trajectory(input, {0, 0, -1}, 5), Error);
  EXPECT_THROW(offset_trajectory(input, {0, 0, 0}, 1), Error);
}

TEST(NvsTrajectory, TwoViewsInterpolateAlongTheShorterArc) {
  auto a = look_at_origin(350, 20, 2.0, 40), b = look_at_origin(30, 40, 2.4, 50);
  auto cams = interpolate_trajectory(a, b, 5);
  ASSERT_EQ(cams.size(), 5u);
  EXPECT_TRUE(torch::equal(cams.front().c2w, a.c2w));
  EXPECT_TRUE(torch::equal(cams.back().c2w, b.c2w));
  EXPECT_EQ(cams.back().fovy_deg, 50);
  auto mid = spherical_from_c2w(cams[2].c2w);
  EXPECT_NEAR(std::remainder(mid.azimuth_deg - 10, 360), 0, 1e-3);  // through 0, not 190
  EXPECT_NEAR(mid.elevation_deg, 30, 1e-3);
  EXPECT_NEAR(mid.distance, 2.2, 1e-5);
  EXPECT_NEAR(cams[2].fovy_deg, 45, 1e-9);
}

TEST(NvsTrajectory, SpecErrorsNameTheProblem) {
  auto spec = parse_trajectory_spec("offset:30,-10,0.2");
  EXPECT_EQ(spec.kind, TrajectorySpec::Kind::offset);
  EXPECT_EQ(spec.offset.d_phi, 30);
  EXPECT_EQ(spec.offset.d_theta, -10);
  EXPECT_EQ(spec.offset.d_r, 0.2);
  auto msg = [](const std::string& text) { return test::error_of<ConfigError>([&] { parse_trajectory_spec(text); }); };
  EXPECT_NE(msg("spiral:1").find("unknown kind 'spiral'"), std::string::npos);
  EXPECT_NE(msg("30,10,0").find("expected offset:DPHI,DTHETA,DR or file:PATH"), std::string::npos);
  EXPECT_NE(msg("offset:30,10").find("expected 3 numbers"), std::string::npos);
  EXPECT_NE(msg("offset:30,ten,0").find("'ten' is not a number"), std::string::npos);
  EXPECT_NE(msg("offset:30,10,0x").find("'0x' is not a number"), std::string::npos);
  EXPECT_NE(msg("offset:30,10,-1").find("DR -1 must be > -1"), std::string::npos);
  EXPECT_NE(msg("file:").find("needs a path"), std::string::npos);

  test::TempDir tmp("nvs-traj");
  auto file_error = [&](const std::string& body) {
    std::ofstream(tmp.path / "t.txt") << body;
    return test::error_of<ConfigError>([&] { read_trajectory_file(tmp.path / "t.txt"); });
  };
  std::string m = test::error_of<ConfigError>([&] { read_trajectory_file(tmp.path / "missing.txt"); });
  EXPECT_NE(m.find("missing.txt: trajectory file not found"), std::string::npos) << m;
  m = file_error("# az el dist fovy\n0 20 2 45\n\n10 20 2\n");
  EXPECT_NE(m.find("t.txt:4: 3 numbers"), std::string::npos) << m;
  m = file_error("0 20 2 45\n10 abc 2 45\n");
  EXPECT_NE(m.find("t.txt:2: 'abc' is not a number"), std::string::npos) << m;
  m = file_error("0 95 2 45\n");
  EXPECT_NE(m.find("t.txt:1: elevation 95"), std::string::npos) << m;
  m = file_error("0 20 -2 45\n");
  EXPECT_NE(m.find("distance -2"), std::string::npos) << m;
  m = file_error("# nothing\n");
  EXPECT_NE(m.find("holds no cameras"), std::string::npos) << m;

  std::ofstream(tmp.path / "ok.txt") << "0 20 2 45  # the input\n10 25 2.1 45\n20 30 2.2 45\n";
  auto cams = read_trajectory_file(tmp.path / "ok.txt");
  ASSERT_EQ(cams.size(), 3u);
  EXPECT_NEAR(spherical_from_c2w(cams[2].c2w).distance, 2.2, 1e-5);
  auto from_spec = make_trajectory(parse_trajectory_spec("file:" + (tmp.path / "ok.txt").string()), cams[0], 3);
  EXPECT_TRUE(torch::equal(from_spec[1].c2w, cams[1].c2w));
  m = test::error_of<ConfigError>(
      [&] { make_trajectory(parse_trajectory_spec("file:" + (tmp.path / "ok.txt").string()), cams[0], 8); });
  EXPECT_NE(m.find("holds 3 cameras, the clip has 8 frames"), std::string::npos) << m;
}

// ---------------------------------------------------------------- data set

SceneDatasetOptions nvs_tiny(int64_t views = 1) {
  SceneDatasetOptions o;
  o.train = 5;
  o.test = 3;
  o.resolution = 12;
  o.frames = 3;
  o.views = views;
  o.depth_noise = 0.01;
  o.depth_scale_error = 0.05;
  o.seed = 4;
  return o;
}

TEST(NvsSceneDataset, RoundTripAndReRender) {
  test::TempDir tmp("nvs-rt");
  for (int64_t views : {1, 2}) {
    const auto file = tmp.path / fmt::format("v{}.safetensors", views);
    render_scene_dataset(nvs_tiny(views), "train", file, false);
    EXPECT_FALSE(fs::exists(file.string() + ".tmp"));
    auto d = load_scene_dataset(file);
    const int64_t N = 5, K = 3, R = 12;
    EXPECT_EQ(d.resolution, R);
    EXPECT_EQ(d.frames_per_clip, K);
    EXPECT_EQ(d.views, views);
    EXPECT_EQ(d.split, "train");
    ASSERT_EQ(d.frames.sizes(), (std::vector<int64_t>{N, K, 3, R, R}));
    ASSERT_EQ(d.renders.sizes(), (std::vector<int64_t>{N, K, 3, R, R}));
    ASSERT_EQ(d.masks.sizes(), (std::vector<int64_t>{N, K, 1, R, R}));
    ASSERT_EQ(d.inputs.sizes(), (std::vector<int64_t>{N, views, 3, R, R}));
    ASSERT_EQ(d.input_depth.sizes(), (std::vector<int64_t>{N, views, R, R}));
    ASSERT_EQ(d.c2w.sizes(), (std::vector<int64_t>{N, K, 4, 4}));
    ASSERT_EQ(d.fovy.sizes(), (std::vector<int64_t>{N, K}));
    ASSERT_EQ(d.scenes.size(), size_t(N));
    EXPECT_GE(d.frames.min().item<float>(), -1.f);
    EXPECT_LE(d.frames.max().item<float>(), 1.f);
    EXPECT_TRUE(((d.masks == 0) | (d.masks == 1)).all().item<bool>());
    // Frame 0: the render is the input view, fully "covered"; the input is the first frame.
    EXPECT_TRUE(torch::equal(d.renders.select(1, 0), d.inputs.select(1, 0)));
    EXPECT_TRUE(torch::equal(d.frames.select(1, 0), d.inputs.select(1, 0)));
    EXPECT_EQ(d.masks.select(1, 0).min().item<float>(), 1.f);
    if (views == 2) EXPECT_TRUE(torch::equal(d.frames.select(1, K - 1), d.inputs.select(1, 1)));
    // Holes are black (-1) in the renders.
    auto holes = (d.masks.select(1, 1) == 0).expand({N, 3, R, R});
    EXPECT_TRUE((d.renders.select(1, 1).masked_select(holes) == -1).all().item<bool>());
    EXPECT_GT(holes.sum().item<int64_t>(), 0);
    // The stored scenes re-render the stored frames exactly (after the uint8 rounding).
    for (int64_t k = 0; k < N; ++k) {
      std::vector<Camera> cams;
      for (int64_t f = 0; f < K; ++f) cams.push_back(scene_camera(d, k, f));
      auto v = render_scene_views(d, k, cams, R);
      auto q = ((v.images + 1) * 127.5).round() / 127.5 - 1;
      EXPECT_LT(test::max_abs_diff(q, d.frames[k]), 1e-6) << k;
    }
    // Held-out cameras at another resolution.
    auto other = render_scene_views(file, 0, {look_at_origin(123, 33, 2.5, 45)}, 20);
    EXPECT_EQ(other.images.sizes(), (std::vector<int64_t>{1, 3, 20, 20}));
  }
  // Train and test differ, a seed repeats.
  render_scene_dataset(nvs_tiny(), "test", tmp.path / "test.safetensors", false);
  render_scene_dataset(nvs_tiny(), "train", tmp.path / "again.safetensors", false);
  auto a = load_scene_dataset(tmp.path / "v1.safetensors"), b = load_scene_dataset(tmp.path / "again.safetensors"),
       t = load_scene_dataset(tmp.path / "test.safetensors");
  EXPECT_TRUE(torch::equal(a.renders, b.renders));
  EXPECT_TRUE(torch::equal(a.input_depth, b.input_depth));
  EXPECT_FALSE(torch::equal(a.frames.narrow(0, 0, 3), t.frames));
  EXPECT_EQ(t.split, "test");
}

TEST(NvsSceneDataset, RenderingDoesNotDependOnTheThreadCount) {
  test::TempDir tmp("nvs-threads");
  const int before = at::get_num_threads();
  auto o = nvs_tiny(2);
  o.train = 9;
  at::set_num_threads(1);
  render_scene_dataset(o, "train", tmp.path / "one.safetensors", false);
  at::set_num_threads(3);
  render_scene_dataset(o, "train", tmp.path / "three.safetensors", false);
  at::set_num_threads(before);
  auto x = load_safetensors(tmp.path / "one.safetensors"), y = load_safetensors(tmp.path / "three.safetensors");
  ASSERT_EQ(x.size(), y.size());
  for (const auto& [name, t] : x) EXPECT_TRUE(torch::equal(t, y.at(name))) << name;
}

TEST(NvsSceneDataset, BadFilesAreNamed) {
  test::TempDir tmp("nvs-bad");
  const auto good = tmp.path / "good.safetensors";
  render_scene_dataset(nvs_tiny(), "train", good, false);
  std::map<std::string, std::string> meta;
  auto t = load_safetensors(good, &meta);
  auto variant = [&](const std::string& name, auto edit) {
    auto tt = t;
    auto mm = meta;
    edit(tt, mm);
    const auto p = tmp.path / (name + ".safetensors");
    save_safetensors(p, tt, mm);
    return test::io_error([&] { load_scene_dataset(p); });
  };
  auto m = test::io_error([&] { load_scene_dataset(tmp.path / "missing.safetensors"); });
  EXPECT_NE(m.find("missing.safetensors"), std::string::npos) << m;
  m = variant("nomasks", [](auto& tt, auto&) { tt.erase("masks"); });
  EXPECT_NE(m.find("nomasks.safetensors: tensor 'masks' is missing"), std::string::npos) << m;
  m = variant("format", [](auto&, auto& mm) { mm["format"] = "retort-world-v1"; });
  EXPECT_NE(m.find("metadata 'format'"), std::string::npos) << m;
  m = variant("frames", [](auto& tt, auto&) { tt["c2w"] = tt["c2w"].narrow(1, 0, 2).contiguous(); });
  EXPECT_NE(m.find("tensor 'c2w' has shape"), std::string::npos) << m;
  m = variant("ids", [](auto& tt, auto&) { tt["object_shape"] = tt["object_shape"].clone().fill_(9); });
  EXPECT_NE(m.find("out of range"), std::string::npos) << m;
  m = variant("mask2", [](auto& tt, auto&) { tt["masks"] = tt["masks"] * 2; });
  EXPECT_NE(m.find("masks"), std::string::npos) << m;
}

TEST(NvsSceneDataset, ConfigErrorsNameTheKey) {
  auto error = [](const std::string& body) {
    auto root = ConfigNode::from_string("[scenes]\n" + body, "s.toml");
    return test::error_of<ConfigError>([&] {
      read_scene_dataset_options(root.table("scenes"));
      root.finish();
    });
  };
  EXPECT_NE(error("frames = 1").find("s.toml: scenes.frames"), std::string::npos);
  EXPECT_NE(error("views = 3").find("scenes.views"), std::string::npos);
  EXPECT_NE(error("objects_min = 3\nobjects_max = 2").find("scenes.objects_min: 3 is above objects_max 2"),
            std::string::npos);
  EXPECT_NE(error("ground = \"grass\"").find("scenes.ground"), std::string::npos);
  EXPECT_NE(error("d_phi = [10, -10]").find("scenes.d_phi"), std::string::npos);
  EXPECT_NE(error("d_r = [-0.8, 0.2]").find("scenes.d_r"), std::string::npos);
  EXPECT_NE(error("depth_noise = 0.9").find("scenes.depth_noise"), std::string::npos);
  EXPECT_NE(error("resolutoin = 32").find("scenes.resolutoin"), std::string::npos);
  auto root = ConfigNode::from_string("[scenes]\nviews = 2\nground = \"none\"\n", "s.toml");
  auto o = read_scene_dataset_options(root.table("scenes"));
  EXPECT_EQ(o.views, 2);
  EXPECT_EQ(o.ground, Ground::none);
  // The shipped config holds the defaults.
  auto shipped = ConfigNode::from_file(fs::path(RETORT_SOURCE_DIR) / "configs" / "scenes.toml");
  auto s = read_scene_dataset_options(shipped.table("scenes"));
  shipped.finish();
  const auto& table = scene_dataset_option_table();
  EXPECT_EQ(table.differences(SceneDatasetOptions{}, s), "");
}

TEST(NvsSceneDataset, CommandWritesEveryFile) {
  test::TempDir tmp("nvs-cmd");
  std::ofstream(tmp.path / "s.toml") << "[scenes]\ntrain = 4\ntest = 2\nresolution = 8\nframes = 2\n";
  const auto summary = run_render_scenes(tmp.path / "s.toml", tmp.path / "out", false);
  EXPECT_NE(summary.find("rendered 4 train + 2 test samples"), std::string::npos) << summary;
  for (const auto* f : {"train.safetensors", "test.safetensors", "preview.png", "config.resolved.toml"})
    EXPECT_TRUE(fs::exists(tmp.path / "out" / f)) << f;
  std::ofstream(tmp.path / "bad.toml") << "[scenes]\ntrain = 4\n[world]\nn = 3\n";
  EXPECT_THROW(run_render_scenes(tmp.path / "bad.toml", tmp.path / "out2", false), ConfigError);
  EXPECT_FALSE(fs::exists(tmp.path / "out2"));
}

}  // namespace
}  // namespace retort
