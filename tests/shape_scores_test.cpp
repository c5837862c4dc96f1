// eval3d's geometry against the true object (text3d/shape_scores.h): the true object's own field
// scores IoU ~ 1 and Chamfer ~ 0, a displaced or wrong object scores far worse, an empty field has
// no surface, and the best-fitting scale is found. Also eval3d's prompts_file and seeds keys.
#include <gtest/gtest.h>

#include <filesystem>
#include <algorithm>
#include <fstream>

#include "retort/core/error.h"
#include "retort/text3d/eval3d.h"
#include "retort/field/volume_render.h"
#include "retort/text3d/shape_scores.h"
#include "retort/render/world.h"
#include "test_util.h"

namespace retort {
namespace {

namespace fs = std::filesystem;

// Another field moved by `offset` (points are looked up at p - offset).
struct ShiftedField : RadianceField {
  std::shared_ptr<RadianceField> inner;
  torch::Tensor offset;
  ShiftedField(std::shared_ptr<RadianceField> f, Vec3 o)
      : inner(std::move(f)), offset(torch::tensor({o.x, o.y, o.z}, torch::kFloat32)) {}
  FieldSample query(const torch::Tensor& p) override { return inner->query((p - offset).clamp(-0.5, 0.5)); }
};

struct EmptyField : RadianceField {
  FieldSample query(const torch::Tensor& p) override {
    return {torch::zeros({p.size(0)}, p.options()), torch::zeros({p.size(0), 3}, p.options())};
  }
};

std::vector<Camera> ring_cameras(int64_t n) {
  std::vector<Camera> cams;
  for (int64_t i = 0; i < n; ++i) cams.push_back(look_at_origin(360.0 * i / n + 10, 20.0 * (i % 3) - 5, 1.4, 40));
  return cams;
}

torch::Tensor opacity_of(RadianceField& field, const std::vector<Camera>& cams, int64_t res) {
  torch::NoGradGuard ng;
  std::vector<torch::Tensor> out;
  for (const auto& cam : cams) {
    auto rays = camera_rays(cam, res);
    VolumeRenderOptions ro;
    ro.samples = 64;
    out.push_back(render_rays(field, rays.origins, rays.dirs, ro).opacity.reshape({res, res}));
  }
  return torch::stack(out);
}

ShapeScores score(RadianceField& field, const Object& truth, int64_t res = 32) {
  auto cams = ring_cameras(6);
  ShapeScoreOptions o;
  o.grid = 48;
  o.mesh_resolution = 48;
  return score_shape(field, opacity_of(field, cams, res), cams, truth, o);
}

TEST(ShapeScores, TrueObjectScoresNearOneAndDisplacedOrWrongObjectsFarLess) {
  for (Shape shape : {Shape::torus, Shape::cube, Shape::cone}) {
    const Object truth{shape, Colour::red, 0.925};
    auto exact = std::make_shared<ObjectFieldImpl>(truth);
    auto s = score(*exact, truth);
    SCOPED_TRACE(shape_name(shape));
    EXPECT_GT(s.silhouette_iou, 0.95);
    EXPECT_GT(s.occupancy_iou, 0.95);
    EXPECT_LT(s.chamfer, 0.01);  // the grids' spacing is 1/47 ~ 0.021
    EXPECT_DOUBLE_EQ(s.scale, 0.925);

    ShiftedField moved(exact, Vec3{0.08, 0, 0.04});
    auto m = score(moved, truth);
    EXPECT_LT(m.silhouette_iou, s.silhouette_iou - 0.15);
    EXPECT_LT(m.occupancy_iou, s.occupancy_iou - 0.25);
    EXPECT_GT(m.chamfer, 0.03);
  }
  // A sphere scored as the prompt's cube: neither IoU near one.
  ObjectFieldImpl sphere(Object{Shape::sphere, Colour::red, 0.925});
  auto w = score(sphere, Object{Shape::cube, Colour::red, 0.925});
  EXPECT_LT(w.occupancy_iou, 0.85);
  EXPECT_GT(w.chamfer, 0.01);
}

TEST(ShapeScores, BestScaleOfTheDataRangeIsFound) {
  const Object small{Shape::capsule, Colour::blue, 0.85}, large{Shape::capsule, Colour::blue, 1.0};
  ObjectFieldImpl field(small);
  EXPECT_DOUBLE_EQ(score(field, large).scale, 0.85);  // the prompt names no scale: the field's is found
  ObjectFieldImpl big(large);
  EXPECT_DOUBLE_EQ(score(big, small).scale, 1.0);
}

TEST(ShapeScores, EmptyFieldHasNoSurfaceAndZeroIoU) {
  EmptyField empty;
  auto s = score(empty, Object{Shape::sphere, Colour::red, 0.925});
  EXPECT_TRUE(std::isnan(s.chamfer));
  EXPECT_EQ(s.silhouette_iou, 0);
  EXPECT_EQ(s.occupancy_iou, 0);
}

// DreamFusion's shading on the true object's field reproduces the world's own renderer (which
// the teacher learned from), where the unshaded albedo does not.
TEST(ShapeScores, ShadedTrueObjectMatchesTheWorldRenderer) {
  for (Shape shape : {Shape::sphere, Shape::cube, Shape::torus}) {
    const Object object{shape, Colour::orange, 1.0};
    ObjectField field(object);
    const Camera cam = look_at_origin(30, 20, 1.4, 40);
    const Vec3 light = light_from_uniforms(cam, 0.3, 0.6);
    RenderOptions world;
    world.supersample = false;
    world.light = light;
    auto truth = render_object(object, cam, 32, world);
    VolumeRenderOptions ro{.samples = 256};
    ro.shading = Shading{.on = true, .light = vec3_tensor(light), .ambient = world.ambient, .normal_eps = 0.004};
    auto shaded = render_image(*field, camera_rays(cam, 32), 32, ro);
    ro.shading.on = false;
    auto flat = render_image(*field, camera_rays(cam, 32), 32, ro);
    auto on = truth.alpha > 0.5;
    auto err = [&](const torch::Tensor& img) { return (img - truth.image).abs().mean(0).masked_select(on).mean().item<double>(); };
    const std::string name = shape_name(shape);
    EXPECT_LT(err(shaded), 0.06) << name;
    EXPECT_GT(err(flat), 2 * err(shaded)) << name;
  }
}

TEST(ShapeScores, MaskIoUCountsPixels) {
  auto a = torch::zeros({2, 4, 4}, torch::kBool), b = torch::zeros({2, 4, 4}, torch::kBool);
  a.slice(1, 0, 2).fill_(true);  // 16 pixels
  b.slice(1, 1, 3).fill_(true);  // 16 pixels, 8 shared
  EXPECT_DOUBLE_EQ(mask_iou(a, b), 8.0 / 24.0);
  EXPECT_DOUBLE_EQ(mask_iou(a, a), 1.0);
  EXPECT_DOUBLE_EQ(mask_iou(torch::zeros({3}, torch::kBool), torch::zeros({3}, torch::kBool)), 1.0);
  EXPECT_THROW(mask_iou(a, b.view({-1})), Error);
}

TEST(Eval3dConfig, PromptsFileAndSeeds) {
  test::TempDir tmp("eval3d-prompts");
  const auto dir = tmp.path;
  auto write = [&](const std::string& name, const std::string& text) {
    std::ofstream(dir / name) << text;
    return (dir / name).string();
  };
  auto read = [&](const std::string& toml) {
    auto root = ConfigNode::from_string(toml, "e.toml");
    auto c = read_eval3d_config(root);
    root.finish();
    return c;
  };
  auto error = [&](const std::string& toml) {
    try {
      read(toml);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  auto good = write("good.txt", "# held out\na purple sphere\n\n  a grey cylinder  # tall\n");
  auto c = read("prompts_file = \"" + good + "\"\n[eval3d]\nseeds = 3\n");
  EXPECT_EQ(c.prompts, (std::vector<std::string>{"a purple sphere", "a grey cylinder"}));
  EXPECT_EQ(c.seeds, 3);
  auto bad = write("bad.txt", "a purple sphere\na pink sphere\n");
  EXPECT_NE(error("prompts_file = \"" + bad + "\"\n").find("bad.txt:2"), std::string::npos);
  auto view = write("view.txt", "a red torus, side view\n");
  EXPECT_NE(error("prompts_file = \"" + view + "\"\n").find("view suffix"), std::string::npos);
  auto empty = write("empty.txt", "# nothing\n");
  EXPECT_NE(error("prompts_file = \"" + empty + "\"\n").find("no prompts"), std::string::npos);
  EXPECT_NE(error("prompts_file = \"" + (dir / "missing.txt").string() + "\"\n").find("missing.txt"),
            std::string::npos);
  EXPECT_NE(error("[eval3d]\nseeds = 0\n").find("eval3d.seeds"), std::string::npos);
  // The shipped held-out list parses and leaves out the four default prompts.
  auto shipped = read(std::string("prompts_file = \"") + RETORT_SOURCE_DIR + "/configs/prompts-heldout.txt\"\n");
  EXPECT_GE(shipped.prompts.size(), 6u);
  for (const auto& p : {"a red torus", "a blue cube", "a green cone", "a yellow capsule"})
    EXPECT_EQ(std::count(shipped.prompts.begin(), shipped.prompts.end(), p), 0) << p;
}

}  // namespace
}  // namespace retort
