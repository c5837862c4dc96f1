// Radiance fields for text-to-3D: voxel and hash grids, volume rendering (against Beer-Lambert and
// finite differences), marching cubes, mesh files and turntable GIF/MP4.
#include <gtest/gtest.h>

#include <gd.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "retort/core/error.h"
#include "retort/core/rng.h"
#include "retort/render/camera.h"
#include "retort/field/hash_grid.h"
#include "retort/field/marching_cubes.h"
#include "retort/field/mesh_io.h"
#include "retort/field/mesh_preview.h"
#include "retort/field/turntable.h"
#include "retort/field/voxel_grid.h"
#include "retort/field/volume_render.h"
#include "test_util.h"

namespace retort {
namespace {

namespace fs = std::filesystem;
using test::max_abs_diff;

// Constant density and colour everywhere in the box: Beer-Lambert in closed form.
struct ConstantField : RadianceField {
  double sigma;
  std::array<double, 3> color;
  ConstantField(double s, std::array<double, 3> c) : sigma(s), color(c) {}
  FieldSample query(const torch::Tensor& p) override {
    auto rgb = torch::tensor({color[0], color[1], color[2]}, p.options()).expand({p.size(0), 3});
    return {torch::full({p.size(0)}, sigma, p.options()), rgb};
  }
};

// A ball of radius r: density 50 (r - |p|) + 25, so the default threshold 25 lies at |p| = r.
struct SphereField : RadianceField {
  double r;
  explicit SphereField(double radius) : r(radius) {}
  FieldSample query(const torch::Tensor& p) override {
    return {(50 * (r - p.norm(2, 1)) + 25).clamp_min(0), (p + 0.5).clamp(0, 1)};
  }
};

// Central finite differences of a double-precision loss at the k entries of `param` with the
// largest analytic gradient (so zero gradients cannot pass vacuously) plus k random ones.
void expect_grad_matches_fd(torch::nn::Module& m, torch::Tensor param, const std::function<torch::Tensor()>& loss,
                            int64_t k, const char* name) {
  for (auto& p : m.parameters()) p.mutable_grad() = torch::Tensor();
  loss().backward();
  auto g = param.grad().reshape(-1).clone();
  ASSERT_GT(g.abs().max().item<double>(), 0) << name << ": no gradient at all";
  auto idx = torch::cat({std::get<1>(g.abs().topk(std::min<int64_t>(k, g.numel()))),
                         torch::randint(g.numel(), {k}, torch::kLong)});
  torch::NoGradGuard ng;
  auto flat = param.detach().view(-1);
  const double eps = 1e-5;
  for (int64_t n = 0; n < idx.numel(); ++n) {
    const int64_t i = idx[n].item<int64_t>();
    const double x = flat[i].item<double>();
    flat[i] = x + eps;
    const double up = loss().item<double>();
    flat[i] = x - eps;
    const double down = loss().item<double>();
    flat[i] = x;
    const double fd = (up - down) / (2 * eps), an = g[i].item<double>();
    EXPECT_NEAR(an, fd, 1e-6 * std::max(1.0, std::abs(fd))) << name << "[" << i << "]";
  }
}

// Rays from random points on a sphere of radius 1.5 towards random points inside the box.
std::pair<torch::Tensor, torch::Tensor> random_rays(int64_t n, torch::Dtype dtype) {
  auto o = torch::randn({n, 3}, torch::kFloat64);
  o = 1.5 * o / o.norm(2, 1, true);
  auto d = torch::rand({n, 3}, torch::kFloat64) * 0.8 - 0.4 - o;
  return {o.to(dtype), (d / d.norm(2, 1, true)).to(dtype)};
}

TEST(Field, VoxelGridTrilinearIsExactForLinearFunctions) {
  torch::manual_seed(0);
  VoxelGrid grid(VoxelGridOptions{.resolution = 5, .blob_density = 0});
  grid->to(torch::kFloat64);
  const double a = 0.7, b = -1.3, c = 2.1, d = 0.4;
  {
    torch::NoGradGuard ng;
    auto acc = grid->density.accessor<double, 5>();
    for (int64_t z = 0; z < 5; ++z)
      for (int64_t y = 0; y < 5; ++y)
        for (int64_t x = 0; x < 5; ++x)
          acc[0][0][z][y][x] = a * grid->vertex_coord(x) + b * grid->vertex_coord(y) + c * grid->vertex_coord(z) + d;
  }
  auto p = torch::rand({200, 3}, torch::kFloat64) - 0.5;
  auto expect = a * p.select(1, 0) + b * p.select(1, 1) + c * p.select(1, 2) + d;
  EXPECT_LT(max_abs_diff(grid->interpolate(grid->density, p).squeeze(1), expect), 1e-12);
  auto s = grid->query(p);
  EXPECT_LT(max_abs_diff(s.density, torch::nn::functional::softplus(expect)), 1e-12);
  EXPECT_LT(max_abs_diff(s.rgb, torch::full({200, 3}, 0.5)), 1e-12);
}

TEST(Field, BlobStartsAsAVisibleBall) {
  VoxelGrid grid(VoxelGridOptions{.resolution = 8});
  auto o = torch::tensor({{-2.0, 0.0, 0.0}, {-2.0, 0.45, 0.45}});
  auto d = torch::tensor({{1.0, 0.0, 0.0}, {1.0, 0.0, 0.0}});
  torch::NoGradGuard ng;
  auto r = render_rays(*grid, o, d);
  EXPECT_GT(r.opacity[0].item<double>(), 0.9);   // through the centre
  EXPECT_LT(r.opacity[1].item<double>(), 0.01);  // along an edge of the box, far from the blob
}

TEST(Field, HashGridLevelsShapesAndRanges) {
  HashGridOptions o;
  HashGridField field(o);
  const auto& lv = field->encoding->levels();
  ASSERT_EQ(int64_t(lv.size()), o.levels);
  EXPECT_EQ(lv.front().resolution, o.base_resolution);
  EXPECT_EQ(lv.back().resolution, o.max_resolution);
  int64_t rows = 0;
  for (size_t l = 0; l < lv.size(); ++l) {
    const int64_t verts = (lv[l].resolution + 1) * (lv[l].resolution + 1) * (lv[l].resolution + 1);
    EXPECT_EQ(lv[l].dense, verts <= (int64_t{1} << o.log2_table)) << "level " << l;
    EXPECT_EQ(lv[l].offset, rows);
    rows += std::min(verts, int64_t{1} << o.log2_table);
    if (l > 0) {
      EXPECT_GT(lv[l].resolution, lv[l - 1].resolution);
    }
  }
  EXPECT_TRUE(lv.front().dense);
  EXPECT_FALSE(lv.back().dense);
  EXPECT_EQ(field->encoding->table.size(0), rows);
  auto p = torch::rand({100, 3}) - 0.5;
  EXPECT_EQ(field->encoding->forward(p).sizes(), (std::vector<int64_t>{100, o.levels * o.features}));
  auto s = field->query(p);
  EXPECT_EQ(s.density.sizes(), (std::vector<int64_t>{100}));
  EXPECT_EQ(s.rgb.sizes(), (std::vector<int64_t>{100, 3}));
  EXPECT_GE(s.density.min().item<double>(), 0);
  EXPECT_GE(s.rgb.min().item<double>(), 0);
  EXPECT_LE(s.rgb.max().item<double>(), 1);
}

TEST(Field, HashMatchesInstantNgpInUint32) {
  HashGridOptions o{.levels = 2, .log2_table = 10, .base_resolution = 4, .max_resolution = 64};
  HashGridEncoding enc(o);
  ASSERT_FALSE(enc->levels()[1].dense);
  for (auto [i, j, k] : std::vector<std::array<uint32_t, 3>>{{0, 0, 0}, {1, 2, 3}, {64, 17, 63}, {5, 64, 64}}) {
    const uint32_t h = (i * 1u) ^ (j * 2654435761u) ^ (k * 805459861u);
    auto row = enc->vertex_rows(torch::tensor({int64_t(i), int64_t(j), int64_t(k)}), 1).item<int64_t>();
    EXPECT_EQ(row - enc->levels()[1].offset, int64_t(h & 1023u)) << i << "," << j << "," << k;
  }
  // The encoder's own (vectorised) hash agrees: at a vertex of the hashed level the feature is
  // that vertex's table row.
  enc->to(torch::kFloat64);
  auto ijk = torch::tensor({{3, 60, 17}, {64, 0, 9}, {22, 41, 64}}, torch::kLong);
  auto p = (ijk.to(torch::kFloat64) / 64.0 * 2 - 1) * o.bound;
  auto feats = enc->forward(p).view({3, 2, o.features}).select(1, 1);
  EXPECT_LT(max_abs_diff(feats, enc->table.index_select(0, enc->vertex_rows(ijk, 1))), 1e-12);
  // Dense level: x fastest.
  auto row = enc->vertex_rows(torch::tensor({int64_t{1}, int64_t{2}, int64_t{3}}), 0).item<int64_t>();
  EXPECT_EQ(row, 1 + 5 * (2 + 5 * 3));
}

TEST(Field, HashGridTrilinearIsExactOnDenseLevels) {
  torch::manual_seed(1);
  HashGridOptions o{.levels = 3, .log2_table = 12, .features = 2, .base_resolution = 4, .max_resolution = 32};
  HashGridEncoding enc(o);
  enc->to(torch::kFloat64);
  const auto& lv = enc->levels();
  ASSERT_TRUE(lv[0].dense && lv[1].dense);
  ASSERT_FALSE(lv[2].dense);
  auto f0 = [](const torch::Tensor& p) { return 0.3 * p.select(-1, 0) - 1.1 * p.select(-1, 1) + 0.8 * p.select(-1, 2) + 0.2; };
  auto f1 = [](const torch::Tensor& p) { return -0.5 * p.select(-1, 0) + 0.25 * p.select(-1, 1) + 1.7 * p.select(-1, 2); };
  for (int l = 0; l < 2; ++l) {
    const int64_t n = lv[l].resolution + 1;
    auto ax = torch::arange(n, torch::kLong);
    auto ijk = torch::stack(torch::meshgrid({ax, ax, ax}, "ij"), -1).reshape({-1, 3});
    auto world = (ijk.to(torch::kFloat64) / double(lv[l].resolution) * 2 - 1) * o.bound;
    auto rows = enc->vertex_rows(ijk, l);
    torch::NoGradGuard ng;
    enc->table.select(1, 0).index_put_({rows}, f0(world));
    enc->table.select(1, 1).index_put_({rows}, f1(world));
  }
  auto p = torch::rand({300, 3}, torch::kFloat64) - 0.5;
  auto feats = enc->forward(p).view({300, 3, 2});
  for (int l = 0; l < 2; ++l) {
    EXPECT_LT(max_abs_diff(feats.select(1, l).select(1, 0), f0(p)), 1e-12) << "level " << l;
    EXPECT_LT(max_abs_diff(feats.select(1, l).select(1, 1), f1(p)), 1e-12) << "level " << l;
  }
}

TEST(Field, HashGatherGradientsMatchFiniteDifferences) {
  torch::manual_seed(9);
  struct Params : torch::nn::Module {
    torch::Tensor table = register_parameter("table", torch::randn({20, 3}, torch::kFloat64));
    torch::Tensor w = register_parameter("w", torch::rand({2, 8, 5}, torch::kFloat64));
  };
  Params m;
  auto rows = torch::randint(20, {2, 8, 5}, torch::kLong);
  rows[0][1][0] = rows[0][0][0];  // a row used twice by one point must accumulate
  auto W = torch::randn({3, 2, 5}, torch::kFloat64);
  auto loss = [&] { return (hash_gather(m.table, rows, m.w) * W).sum(); };
  auto vals = m.table.index_select(0, rows.reshape(-1)).view({2, 8, 5, 3}).permute({3, 0, 1, 2});  // [F,B,8,M]
  EXPECT_LT(max_abs_diff(hash_gather(m.table, rows, m.w), (vals * m.w.unsqueeze(0)).sum(2)), 1e-12);
  expect_grad_matches_fd(m, m.table, loss, 6, "table");
  expect_grad_matches_fd(m, m.w, loss, 6, "w");
}

// A float64 hash encoding with its table and the points it encodes as parameters, and the loss
// sum(encoding(points) * W) through the CPU kernel or the vectorised (tensor) path.
struct HashParams : torch::nn::Module {
  torch::Tensor points, W;
  HashGridEncoding enc{nullptr};
  HashParams(const HashGridOptions& o, const torch::Tensor& p) {
    enc = register_module("enc", HashGridEncoding(o));
    enc->to(torch::kFloat64);
    torch::NoGradGuard ng;
    enc->table.uniform_(-1, 1);
    points = register_parameter("points", p);
    W = torch::randn({p.size(0), o.levels * o.features}, torch::kFloat64);
  }
  torch::Tensor kernel() { return (enc->forward(points) * W).sum(); }
  torch::Tensor vectorised() { return (enc->forward_vectorised(points) * W).sum(); }
  // The table's and the points' gradients of one of the two.
  std::pair<torch::Tensor, torch::Tensor> grads(bool use_kernel) {
    zero_grad();
    (use_kernel ? kernel() : vectorised()).backward();
    return {enc->table.grad().clone(), points.grad().clone()};
  }
  // The kernel against the vectorised path: forward, table and point gradients.
  void expect_paths_agree(double tol) {
    EXPECT_LT(max_abs_diff(enc->forward(points), enc->forward_vectorised(points)), tol);
    auto [kt, kp] = grads(true);
    auto [vt, vp] = grads(false);
    EXPECT_GT(kt.abs().max().item<double>(), 0);
    EXPECT_LT(max_abs_diff(kt.to(torch::kFloat64), vt.to(torch::kFloat64)), tol);
    EXPECT_LT(max_abs_diff(kp.to(torch::kFloat64), vp.to(torch::kFloat64)), 100 * tol);
  }
};

TEST(Field, HashKernelMatchesTheVectorisedEncodingAndFiniteDifferences) {
  torch::manual_seed(4);
  // Two dense and two hashed levels, 3 features, points including the box's faces and outside it.
  HashGridOptions o{.levels = 4, .log2_table = 10, .features = 3, .base_resolution = 4, .max_resolution = 40};
  auto p = torch::rand({40, 3}, torch::kFloat64) * 0.98 - 0.49;
  p[0][0] = 0.5, p[1][1] = -0.5, p[2][2] = 0.7;  // on the far face, the near face, outside (clamped)
  HashParams m(o, p);
  ASSERT_TRUE(m.enc->levels()[0].dense && !m.enc->levels()[3].dense);
  m.expect_paths_agree(1e-12);
  EXPECT_EQ(m.grads(true).second[2][2].item<double>(), 0);  // clamped outside the box: no gradient, as the vectorised path
  // The kernel's own backward against finite differences, with the points off the box's faces
  // (the clamp has a kink there; random points are off cell faces almost surely).
  {
    torch::NoGradGuard ng;
    m.points[0][0] = 0.4537, m.points[1][1] = -0.4461;
  }
  expect_grad_matches_fd(m, m.enc->table, [&] { return m.kernel(); }, 6, "table");
  expect_grad_matches_fd(m, m.points, [&] { return m.kernel(); }, 6, "points");
}

// Two features (generate3d's): the kernel's unrolled path, on samples along rays as a render gives
// them (many consecutive points in one coarse cell) and on random points.
TEST(Field, HashKernelWithTwoFeaturesMatchesTheVectorisedEncodingAlongRays) {
  torch::manual_seed(5);
  HashGridOptions o{.levels = 6, .log2_table = 11, .features = 2, .base_resolution = 2, .max_resolution = 48};
  // 6 rays through the box, 40 samples each in order, then 30 random points.
  auto origin = torch::rand({6, 1, 3}, torch::kFloat64) - 0.5, dir = torch::randn({6, 1, 3}, torch::kFloat64);
  dir = dir / dir.norm(2, -1, true);
  auto t = torch::linspace(-0.6, 0.6, 40, torch::kFloat64).view({1, 40, 1});
  auto along = (origin * 0.5 + t * dir).reshape({240, 3}).clamp(-0.49, 0.49);
  HashParams m(o, torch::cat({along, torch::rand({30, 3}, torch::kFloat64) * 0.98 - 0.49}));
  ASSERT_TRUE(m.enc->levels()[0].dense && !m.enc->levels()[5].dense);
  m.expect_paths_agree(1e-12);
  expect_grad_matches_fd(m, m.enc->table, [&] { return m.kernel(); }, 6, "table");
  // In float32 too, as generate3d runs it: the two paths sum the table's gradient in other orders.
  m.enc->to(torch::kFloat32);
  {
    torch::NoGradGuard ng;
    m.points.set_data(m.points.to(torch::kFloat32));
  }
  m.W = m.W.to(torch::kFloat32);
  m.expect_paths_agree(1e-4);
}

TEST(Field, HashGridGradientsReachDenseAndHashedTables) {
  torch::manual_seed(2);
  HashGridField field(HashGridOptions{.levels = 4, .log2_table = 12, .base_resolution = 8, .max_resolution = 64});
  auto [o, d] = random_rays(64, torch::kFloat32);
  auto r = render_rays(*field, o, d, VolumeRenderOptions{.samples = 16});
  r.rgb.sum().backward();
  const auto& lv = field->encoding->levels();
  auto g = field->encoding->table.grad().abs().sum(1);
  for (size_t l = 0; l < lv.size(); ++l) {
    const int64_t end = l + 1 < lv.size() ? lv[l + 1].offset : g.size(0);
    EXPECT_GT((g.slice(0, lv[l].offset, end) > 0).sum().item<int64_t>(), 0) << "level " << l << (lv[l].dense ? " dense" : " hashed");
  }
}

TEST(VolumeRender, ConstantDensityMatchesBeerLambert) {
  const double sigma = 3.0;
  auto field = std::make_shared<ConstantField>(sigma, std::array<double, 3>{0.9, 0.2, 0.1});
  // Lengths inside the box: 1 (axis), sqrt(2) (diagonal in xy), 0.5 (from the centre).
  auto o = torch::tensor({{-2.0, 0.1, -0.2}, {-2.0, -2.0, 0.1}, {0.0, 0.0, 0.0}}, torch::kFloat64);
  auto d = torch::tensor({{1.0, 0.0, 0.0}, {M_SQRT1_2, M_SQRT1_2, 0.0}, {0.0, 0.0, 1.0}}, torch::kFloat64);
  const double L[3] = {1.0, M_SQRT2, 0.5}, near[3] = {1.5, 1.5 * M_SQRT2, 0.0};
  auto bg = torch::tensor({0.2, 0.4, 0.6}, torch::kFloat64);
  const int64_t S = 256;
  auto r = render_rays(*field, o, d, VolumeRenderOptions{.samples = S, .background = bg});
  for (int i = 0; i < 3; ++i) {
    const double op = 1 - std::exp(-sigma * L[i]);
    EXPECT_NEAR(r.opacity[i].item<double>(), op, 1e-12) << "ray " << i;
    auto expect_rgb = torch::tensor({0.9, 0.2, 0.1}, torch::kFloat64) * op + bg * (1 - op);
    EXPECT_LT(max_abs_diff(r.rgb[i], expect_rgb), 1e-12) << "ray " << i;
    // Weights: T_i alpha_i with T_i = (1 - alpha)^i for equal intervals.
    const double delta = L[i] / S, alpha = 1 - std::exp(-sigma * delta);
    auto expect_w = torch::pow(1 - alpha, torch::arange(S, torch::kFloat64)) * alpha;
    EXPECT_LT(max_abs_diff(r.weights[i], expect_w), 1e-12) << "ray " << i;
    // Depth against the continuous integral of t sigma exp(-sigma (t - near)) (midpoint quadrature).
    const double e = std::exp(-sigma * L[i]);
    const double depth = near[i] * (1 - e) + (1 - e) / sigma - L[i] * e;
    EXPECT_NEAR(r.depth[i].item<double>(), depth, 1e-4) << "ray " << i;
  }
}

TEST(VolumeRender, RayMissingTheBoxGetsTheBackground) {
  auto field = std::make_shared<ConstantField>(50.0, std::array<double, 3>{0, 0, 0});
  auto o = torch::tensor({{-2.0, 0.7, 0.0}, {2.0, 0.0, 0.0}, {0.0, 0.0, 3.0}});
  auto d = torch::tensor({{1.0, 0.0, 0.0}, {1.0, 0.0, 0.0}, {0.0, 1.0, 0.0}});
  auto bg = torch::tensor({0.2f, 0.4f, 0.6f});
  auto r = render_rays(*field, o, d, VolumeRenderOptions{.background = bg});
  EXPECT_LT(max_abs_diff(r.rgb, bg.expand({3, 3})), 1e-7);
  EXPECT_LT(r.opacity.abs().max().item<double>(), 1e-7);
  EXPECT_LT(r.depth.abs().max().item<double>(), 1e-7);
  // Default background is white.
  EXPECT_LT(max_abs_diff(render_rays(*field, o, d).rgb, torch::ones({3, 3})), 1e-7);
}

// A 4^3 double-precision grid with random density and colour, for gradient checks.
VoxelGrid random_voxel_grid() {
  VoxelGrid grid(VoxelGridOptions{.resolution = 4});
  grid->to(torch::kFloat64);
  torch::NoGradGuard ng;
  grid->density.normal_(0, 2);
  grid->color.normal_(0, 1);
  return grid;
}

TEST(VolumeRender, VoxelGridGradientsMatchFiniteDifferences) {
  torch::manual_seed(3);
  VoxelGrid grid = random_voxel_grid();
  auto [o, d] = random_rays(12, torch::kFloat64);
  auto w_rgb = torch::randn({12, 3}, torch::kFloat64), w_op = torch::randn({12}, torch::kFloat64),
       w_depth = torch::randn({12}, torch::kFloat64);
  auto loss = [&] {
    auto r = render_rays(*grid, o, d, VolumeRenderOptions{.samples = 24});
    return (r.rgb * w_rgb).sum() + (r.opacity * w_op).sum() + (r.depth * w_depth).sum() +
           opacity_sparsity_loss(r.opacity) + opacity_entropy_loss(r.opacity);
  };
  expect_grad_matches_fd(*grid, grid->density, loss, 6, "density");
  expect_grad_matches_fd(*grid, grid->color, loss, 6, "color");
}

TEST(VolumeRender, HashGridGradientsMatchFiniteDifferences) {
  torch::manual_seed(4);
  // Level 0 dense (3^3 <= 64), level 1 hashed (6^3 > 64).
  HashGridField field(HashGridOptions{.levels = 2, .log2_table = 6, .base_resolution = 2, .max_resolution = 5,
                                      .hidden = 8, .init_scale = 1.0});
  field->to(torch::kFloat64);
  ASSERT_TRUE(field->encoding->levels()[0].dense);
  ASSERT_FALSE(field->encoding->levels()[1].dense);
  auto [o, d] = random_rays(8, torch::kFloat64);
  auto w_rgb = torch::randn({8, 3}, torch::kFloat64), w_op = torch::randn({8}, torch::kFloat64);
  auto loss = [&] {
    auto r = render_rays(*field, o, d, VolumeRenderOptions{.samples = 16});
    return (r.rgb * w_rgb).sum() + (r.opacity * w_op).sum() + 0.1 * r.depth.sum();
  };
  expect_grad_matches_fd(*field, field->encoding->table, loss, 6, "table");
  expect_grad_matches_fd(*field, field->mlp->parameters().front(), loss, 4, "mlp.0.weight");
}

TEST(VolumeRender, StratifiedSamplingIsSeededAndJittered) {
  torch::manual_seed(5);
  VoxelGrid grid(VoxelGridOptions{.resolution = 6});
  {
    torch::NoGradGuard ng;
    grid->density.normal_(0, 3);
  }
  auto [o, d] = random_rays(16, torch::kFloat32);
  torch::NoGradGuard ng;
  Rng a(7), b(7);
  auto ra = render_rays(*grid, o, d, VolumeRenderOptions{.samples = 8, .stratified = true, .rng = &a});
  auto rb = render_rays(*grid, o, d, VolumeRenderOptions{.samples = 8, .stratified = true, .rng = &b});
  auto rc = render_rays(*grid, o, d, VolumeRenderOptions{.samples = 8});
  EXPECT_EQ(max_abs_diff(ra.rgb, rb.rgb), 0);
  EXPECT_GT(max_abs_diff(ra.rgb, rc.rgb), 1e-4);
  EXPECT_THROW(render_rays(*grid, o, d, VolumeRenderOptions{.stratified = true}), ConfigError);
}

TEST(VolumeRender, ChunkedImageMatchesOneBatch) {
  torch::manual_seed(6);
  VoxelGrid grid(VoxelGridOptions{.resolution = 6});
  {
    torch::NoGradGuard ng;
    grid->color.normal_(0, 2);
  }
  auto rays = camera_rays(look_at_origin(45, 30, 2.0, 40), 5);
  torch::NoGradGuard ng;
  auto img = render_image(*grid, rays, 5, {}, 6);
  ASSERT_EQ(img.sizes(), (std::vector<int64_t>{3, 5, 5}));
  auto flat = render_rays(*grid, rays.origins, rays.dirs).rgb;
  EXPECT_LT(max_abs_diff(img, flat.t().reshape({3, 5, 5})), 1e-6);
}

TEST(VolumeRender, OpacityRegularisers) {
  EXPECT_NEAR(opacity_sparsity_loss(torch::zeros({4})).item<double>(), 0.1, 1e-7);
  EXPECT_NEAR(opacity_sparsity_loss(torch::ones({4})).item<double>(), std::sqrt(1.01), 1e-6);
  EXPECT_NEAR(opacity_entropy_loss(torch::full({4}, 0.5)).item<double>(), std::log(2.0), 1e-6);
  EXPECT_LT(opacity_entropy_loss(torch::tensor({0.0f, 1.0f})).item<double>(), 0.01);
}

// Shaded renders (volume_render.h Shading): the gradient through the albedo, the opacity, the
// surface point and the finite-difference normals, against finite differences of the whole render.
TEST(VolumeRender, ShadedGradientsMatchFiniteDifferences) {
  torch::manual_seed(5);
  VoxelGrid grid = random_voxel_grid();
  auto [o, d] = random_rays(12, torch::kFloat64);
  auto w_rgb = torch::randn({12, 3}, torch::kFloat64);
  for (bool textureless : {false, true}) {
    VolumeRenderOptions ro{.samples = 24};
    ro.shading = Shading{.on = true, .light = torch::tensor({0.3, -0.5, 0.8}, torch::kFloat64),
                         .ambient = 0.2, .textureless = textureless, .normal_eps = 0.05};
    auto loss = [&] { return (render_rays(*grid, o, d, ro).rgb * w_rgb).sum(); };
    expect_grad_matches_fd(*grid, grid->density, loss, 6, textureless ? "density (textureless)" : "density");
    if (!textureless) expect_grad_matches_fd(*grid, grid->color, loss, 6, "color");
  }
}

TEST(VolumeRender, ShadingNormalsPointOutOfASphereAndTexturelessIgnoresColour) {
  // A soft ball: density falls linearly with the radius, so -grad points outward everywhere.
  struct Ball : RadianceField {
    torch::Tensor rgb = torch::tensor({0.9, 0.2, 0.2});
    FieldSample query(const torch::Tensor& p) override {
      return {(1 - p.norm(2, 1) / 0.4).clamp_min(0) * 200, rgb.to(p.dtype()).expand({p.size(0), 3})};
    }
  } ball;
  auto p = torch::randn({50, 3}, torch::kFloat64);
  p = 0.3 * p / p.norm(2, 1, true);
  auto n = density_normals(ball, p, 0.01);
  EXPECT_LT(max_abs_diff(n, p / 0.3), 1e-3);  // central differences of |p|: O(eps^2 / r^2)
  // The lit side is brighter than the far side, and textureless renders do not see the colour.
  auto cam = look_at_origin(0, 0, 1.5, 40);
  auto rays = camera_rays(cam, 9);
  VolumeRenderOptions ro{.samples = 64};
  ro.shading = Shading{.on = true, .light = torch::tensor({0.0f, 1.0f, 0.0f}), .ambient = 0.1};
  auto img = render_image(ball, rays, 9, ro);
  EXPECT_GT(img[0][4][6].item<double>(), img[0][4][2].item<double>() + 0.3) << "+y (image right) is lit";
  ro.shading.textureless = true;
  auto red = render_image(ball, rays, 9, ro);
  ball.rgb = torch::tensor({0.1, 0.2, 0.9});
  EXPECT_LT(max_abs_diff(red, render_image(ball, rays, 9, ro)), 1e-6);
  EXPECT_NEAR(red[0][4][6].item<double>(), red[2][4][6].item<double>(), 1e-6) << "textureless is grey";
  ro.shading.light = torch::Tensor();
  EXPECT_THROW(render_image(ball, rays, 9, ro), ConfigError);
}

// Coarse-to-fine: the levels above the active ones neither change the output nor get gradient.
// bench-step's field-render compares the two encodings inside a render: they must give one image.
TEST(Field, VectorisedSwitchRendersTheSameImage) {
  torch::manual_seed(7);
  HashGridField field(HashGridOptions{.levels = 4, .log2_table = 10, .base_resolution = 4, .max_resolution = 32});
  {
    torch::NoGradGuard ng;
    field->encoding->table.normal_(0, 0.5);
  }
  auto [o, d] = random_rays(32, torch::kFloat32);
  auto kernel = render_rays(*field, o, d, VolumeRenderOptions{.samples = 16}).rgb;
  field->encoding->vectorised = true;
  EXPECT_LT(max_abs_diff(kernel, render_rays(*field, o, d, VolumeRenderOptions{.samples = 16}).rgb), 1e-5);
}

TEST(Field, InactiveHashLevelsAreMaskedOut) {
  torch::manual_seed(6);
  HashGridField field(HashGridOptions{.levels = 4, .log2_table = 12, .base_resolution = 4, .max_resolution = 32});
  {
    torch::NoGradGuard ng;
    field->encoding->table.normal_(0, 0.5);
  }
  auto p = torch::rand({64, 3}) - 0.5;
  field->set_active_levels(2);
  const auto& lv = field->encoding->levels();
  auto before = field->query(p).density;
  {
    torch::NoGradGuard ng;
    field->encoding->table.slice(0, lv[2].offset).normal_(0, 0.5);
  }
  auto out = field->query(p);
  EXPECT_LT(max_abs_diff(before, out.density), 1e-6);
  (out.density.sum() + out.rgb.sum()).backward();
  auto g = field->encoding->table.grad().abs();
  EXPECT_GT(g.slice(0, 0, lv[2].offset).sum().item<double>(), 0);
  EXPECT_EQ(g.slice(0, lv[2].offset).sum().item<double>(), 0);
  field->set_active_levels(4);
  EXPECT_GT(max_abs_diff(before, field->query(p).density), 1e-4) << "all levels count again";
  EXPECT_THROW(field->set_active_levels(0), ConfigError);
  EXPECT_THROW(field->set_active_levels(5), ConfigError);
}

// Closed: every undirected edge in exactly two faces; oriented: each directed edge once, so the
// two faces at an edge traverse it in opposite directions. Returns the Euler characteristic.
int64_t expect_closed_oriented(const Mesh& m) {
  std::map<std::pair<int64_t, int64_t>, int> directed;
  auto f = m.faces.accessor<int64_t, 2>();
  for (int64_t i = 0; i < m.faces.size(0); ++i)
    for (int e = 0; e < 3; ++e) directed[{f[i][e], f[i][(e + 1) % 3]}]++;
  int64_t bad = 0;
  for (const auto& [edge, n] : directed) {
    auto rev = directed.find({edge.second, edge.first});
    if (n != 1 || rev == directed.end() || rev->second != 1) ++bad;
  }
  EXPECT_EQ(bad, 0) << "edges not shared by exactly two consistently oriented faces";
  const int64_t E = int64_t(directed.size()) / 2;
  return m.vertices.size(0) - E + m.faces.size(0);
}

TEST(MarchingCubes, SphereIsClosedOutwardAndRound) {
  auto field = std::make_shared<SphereField>(0.3);
  auto mesh = extract_mesh(*field, MeshExtractOptions{.resolution = 48});
  EXPECT_EQ(expect_closed_oriented(mesh), 2);
  auto radius = mesh.vertices.norm(2, 1);
  EXPECT_NEAR(radius.mean().item<double>(), 0.3, 0.3 * 0.02);
  EXPECT_LT((radius - 0.3).abs().max().item<double>(), 0.01);
  // Outward: every face normal points away from the centre.
  auto v = mesh.vertices.index_select(0, mesh.faces.reshape(-1)).view({-1, 3, 3});
  auto n = torch::linalg_cross(v.select(1, 1) - v.select(1, 0), v.select(1, 2) - v.select(1, 0));
  EXPECT_EQ((((n * v.mean(1)).sum(1)) <= 0).sum().item<int64_t>(), 0);
  // Vertex colours are the field's rgb at the vertices.
  EXPECT_LT(max_abs_diff(mesh.colors, mesh.vertices + 0.5), 1e-5);
}

TEST(MarchingCubes, RandomVolumesGiveClosedOrientedMeshes) {
  torch::manual_seed(8);
  for (int trial = 0; trial < 20; ++trial) {  // ~80 cells per cube configuration
    auto vol = torch::full({10, 10, 10}, -1.0);
    vol.slice(0, 1, 9).slice(1, 1, 9).slice(2, 1, 9).copy_(torch::randn({8, 8, 8}));
    auto mesh = marching_cubes(vol, 0.0, {0, 0, 0}, 1.0);
    EXPECT_GT(mesh.faces.size(0), 100);
    expect_closed_oriented(mesh);
  }
}

TEST(MarchingCubes, ObjectFillingTheBoxIsClosed) {
  auto field = std::make_shared<ConstantField>(100.0, std::array<double, 3>{1, 0, 0});
  auto mesh = extract_mesh(*field, MeshExtractOptions{.resolution = 6});
  EXPECT_EQ(expect_closed_oriented(mesh), 2);
  EXPECT_LT(mesh.vertices.abs().max().item<double>(), 0.5 + 0.2 + 1e-6);  // within one cell of the box
}

TEST(MarchingCubes, EmptySurfaceErrorNamesThresholdAndMaxDensity) {
  VoxelGrid grid(VoxelGridOptions{.resolution = 4});
  try {
    extract_mesh(*grid, MeshExtractOptions{.resolution = 8, .threshold = 1000});
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no surface at threshold 1000: max density"), std::string::npos) << e.what();
  }
}

// The preview draws the triangles: a sphere fills a disc of the framed radius in every view, the side
// towards the light is brighter, and the vertex colours land where their vertices are.
TEST(MeshPreview, SphereFillsItsDiscLitAndColouredWhereItsVerticesAre) {
  auto field = std::make_shared<SphereField>(0.3);
  auto mesh = extract_mesh(*field, MeshExtractOptions{.resolution = 32});
  MeshPreviewOptions o;
  o.size = 96;
  o.yaw_deg = {0, 90, 180};
  o.elevation_deg = 0;
  auto img = render_mesh_preview(mesh, o);
  ASSERT_EQ(img.sizes(), (std::vector<int64_t>{3, 3, 96, 96}));
  auto covered = (img < 0.999).any(1);  // [N,S,S]: not the white background
  for (int64_t n = 0; n < 3; ++n)
    EXPECT_NEAR(covered[n].to(torch::kFloat64).mean().item<double>(), M_PI * 0.48 * 0.48, 0.03) << n;
  // The light comes from the upper left (view space): that quadrant is brighter than the lower right.
  auto brightness = img.mean(1);
  auto mean_where = [&](int64_t n, int64_t r0, int64_t c0) {
    auto b = brightness[n].slice(0, r0, r0 + 48).slice(1, c0, c0 + 48);
    auto m = covered[n].slice(0, r0, r0 + 48).slice(1, c0, c0 + 48);
    return (b * m).sum().item<double>() / m.sum().item<double>();
  };
  EXPECT_GT(mean_where(0, 0, 0), mean_where(0, 48, 48) + 0.1);
  // Colour is position + 0.5: red grows with x. At yaw 0 +x is on the right; at yaw 180 on the left.
  auto red_over_green = [&](int64_t n, int64_t c0) {
    auto r = img[n][0].slice(1, c0, c0 + 48), g = img[n][1].slice(1, c0, c0 + 48);
    auto m = covered[n].slice(1, c0, c0 + 48);
    return (r * m).sum().item<double>() / (g * m).sum().item<double>();
  };
  EXPECT_GT(red_over_green(0, 48), red_over_green(0, 0) * 1.5);
  EXPECT_LT(red_over_green(2, 48) * 1.5, red_over_green(2, 0));
  // No triangles, no picture: the background only.
  Mesh empty{torch::zeros({0, 3}), torch::zeros({0, 3}, torch::kInt64), {}};
  EXPECT_EQ(render_mesh_preview(empty, o).min().item<double>(), 1.0);
}

std::vector<std::string> read_lines(const fs::path& p) {
  std::ifstream in(p);
  std::vector<std::string> lines;
  for (std::string l; std::getline(in, l);) lines.push_back(l);
  return lines;
}

TEST(MarchingCubes, ObjAndPlyParseBack) {
  test::TempDir dir("field-mesh");
  auto field = std::make_shared<SphereField>(0.3);
  auto mesh = extract_mesh(*field, MeshExtractOptions{.resolution = 12});
  const int64_t V = mesh.vertices.size(0), F = mesh.faces.size(0);
  write_obj(dir.path / "m.obj", mesh);
  int64_t nv = 0, nf = 0;
  for (const auto& l : read_lines(dir.path / "m.obj")) {
    std::istringstream s(l);
    std::string tag;
    s >> tag;
    std::vector<double> x;
    for (double t; s >> t;) x.push_back(t);
    if (tag == "v") {
      ASSERT_EQ(x.size(), 6u) << l;
      EXPECT_NEAR(x[0], mesh.vertices[nv][0].item<double>(), 1e-5);
      EXPECT_NEAR(x[3], mesh.colors[nv][0].item<double>(), 1.0 / 255);
      ++nv;
    } else if (tag == "f") {
      ASSERT_EQ(x.size(), 3u) << l;
      EXPECT_EQ(int64_t(x[0]) - 1, mesh.faces[nf][0].item<int64_t>());
      ++nf;
    }
  }
  EXPECT_EQ(nv, V);
  EXPECT_EQ(nf, F);

  write_ply(dir.path / "m.ply", mesh);
  std::ifstream in(dir.path / "m.ply", std::ios::binary);
  std::string line, header;
  int64_t pv = -1, pf = -1;
  while (std::getline(in, line)) {
    header += line + "\n";
    if (line.rfind("element vertex ", 0) == 0) pv = std::stoll(line.substr(15));
    if (line.rfind("element face ", 0) == 0) pf = std::stoll(line.substr(13));
    if (line == "end_header") break;
  }
  EXPECT_EQ(header.rfind("ply\nformat binary_little_endian 1.0\n", 0), 0u);
  EXPECT_EQ(pv, V);
  EXPECT_EQ(pf, F);
  float xyz[3];
  in.read(reinterpret_cast<char*>(xyz), sizeof xyz);
  EXPECT_FLOAT_EQ(xyz[2], mesh.vertices[0][2].item<float>());
  EXPECT_EQ(int64_t(fs::file_size(dir.path / "m.ply")), int64_t(header.size()) + V * 15 + F * 13);
}

// Image descriptors (0x2C) in a GIF, walking its block structure.
int count_gif_frames(const std::vector<uint8_t>& b) {
  auto skip_sub_blocks = [&](size_t p) {
    while (p < b.size() && b[p] != 0) p += b[p] + 1;
    return p + 1;
  };
  size_t p = 13;
  if (b[10] & 0x80) p += 3u << ((b[10] & 7) + 1);
  int frames = 0;
  while (p < b.size()) {
    if (b[p] == 0x21) {
      p = skip_sub_blocks(p + 2);
    } else if (b[p] == 0x2C) {
      ++frames;
      const uint8_t flags = b[p + 9];
      p += 10;
      if (flags & 0x80) p += 3u << ((flags & 7) + 1);
      p = skip_sub_blocks(p + 1);  // after the LZW minimum code size
    } else if (b[p] == 0x3B) {
      return frames;
    } else {
      ADD_FAILURE() << "bad GIF block 0x" << std::hex << int(b[p]) << " at " << std::dec << p;
      return -1;
    }
  }
  ADD_FAILURE() << "GIF has no trailer";
  return -1;
}

TEST(Turntable, GifHasEveryFrameAndDecodes) {
  test::TempDir dir("field-gif");
  const int64_t F = 4, H = 10, W = 12;
  auto frames = torch::zeros({F, 3, H, W});
  for (int64_t f = 0; f < F; ++f) {
    frames[f][0].fill_(0.25 * double(f));
    frames[f][1].fill_(0.8);
    frames[f][2].copy_(torch::linspace(0, 1, W).expand({H, W}));
  }
  const auto path = dir.path / "t.gif";
  write_gif(path, frames, 10);
  std::ifstream in(path, std::ios::binary);
  std::vector<uint8_t> bytes(std::istreambuf_iterator<char>(in), {});
  ASSERT_GT(bytes.size(), 13u);
  EXPECT_EQ(std::string(bytes.begin(), bytes.begin() + 6), "GIF89a");
  EXPECT_EQ(bytes[6] | bytes[7] << 8, W);
  EXPECT_EQ(bytes[8] | bytes[9] << 8, H);
  EXPECT_EQ(count_gif_frames(bytes), F);
  FILE* fp = std::fopen(path.c_str(), "rb");
  ASSERT_NE(fp, nullptr);
  gdImagePtr im = gdImageCreateFromGif(fp);
  std::fclose(fp);
  ASSERT_NE(im, nullptr);
  EXPECT_EQ(gdImageSX(im), W);
  EXPECT_EQ(gdImageSY(im), H);
  const int c = gdImageGetPixel(im, W - 1, 0);
  EXPECT_NEAR(gdImageRed(im, c), 0, 8);
  EXPECT_NEAR(gdImageGreen(im, c), 204, 8);
  EXPECT_NEAR(gdImageBlue(im, c), 255, 8);
  gdImageDestroy(im);
  EXPECT_THROW(write_gif(path, torch::zeros({2, 4, 4})), ConfigError);
}

// Sets PATH for the scope of one test.
struct ScopedPath {
  std::string old;
  explicit ScopedPath(const std::string& p) : old(std::getenv("PATH") ? std::getenv("PATH") : "") { ::setenv("PATH", p.c_str(), 1); }
  ~ScopedPath() { ::setenv("PATH", old.c_str(), 1); }
};

TEST(Turntable, Mp4IsSkippedWithoutFfmpeg) {
  test::TempDir dir("field-noffmpeg");
  ScopedPath path(dir.path.string());
  EXPECT_FALSE(write_mp4(dir.path / "t.mp4", torch::zeros({2, 3, 4, 4})));
  EXPECT_FALSE(fs::exists(dir.path / "t.mp4"));
}

TEST(Turntable, Mp4PipesRawFramesToFfmpeg) {
  test::TempDir dir("field-fakeffmpeg");
  {
    std::ofstream s(dir.path / "ffmpeg");
    s << "#!/bin/sh\nfor a; do last=$a; done\nexec /bin/cat > \"$last\"\n";
  }
  fs::permissions(dir.path / "ffmpeg", fs::perms::owner_all);
  ScopedPath path(dir.path.string());
  auto frames = torch::randint(0, 256, {3, 3, 6, 8}).to(torch::kUInt8);
  ASSERT_TRUE(write_mp4(dir.path / "out dir's.mp4", frames));
  std::ifstream in(dir.path / "out dir's.mp4", std::ios::binary);
  std::vector<uint8_t> bytes(std::istreambuf_iterator<char>(in), {});
  ASSERT_EQ(int64_t(bytes.size()), 3 * 6 * 8 * 3);
  auto hwc = frames.permute({0, 2, 3, 1}).contiguous();
  EXPECT_EQ(std::memcmp(bytes.data(), hwc.data_ptr<uint8_t>(), bytes.size()), 0);
}

TEST(Turntable, RendersTheBlobFromEverySide) {
  VoxelGrid grid(VoxelGridOptions{.resolution = 8});
  auto frames = render_turntable(*grid, TurntableOptions{.frames = 3, .resolution = 9});
  ASSERT_EQ(frames.sizes(), (std::vector<int64_t>{3, 3, 9, 9}));
  EXPECT_GE(frames.min().item<double>(), 0);
  EXPECT_LE(frames.max().item<double>(), 1);
  for (int f = 0; f < 3; ++f) {
    EXPECT_LT(frames[f][0][4][4].item<double>(), 0.6) << "frame " << f;  // grey blob in the middle
    EXPECT_GT(frames[f][0][0][0].item<double>(), 0.99) << "frame " << f;  // white corner
  }
}

}  // namespace
}  // namespace retort
