// Text-to-3D plumbing: the field generator's views and labels, the fake scores of VSD / ASD, field
// files, the multi-view consistency measure, and generate3d's config errors. The end-to-end run
// (a score-distilled field that the classifier recognises better than its start) is in
// text3d_e2e_test.cpp.
#include <gtest/gtest.h>

#include <cmath>

#include "retort/core/error.h"
#include "retort/models/fake_score.h"
#include "retort/models/unet.h"
#include "retort/render/world.h"
#include "retort/text3d/field_generator.h"
#include "retort/text3d/generate3d.h"
#include "retort/eval/view_consistency.h"
#include "test_util.h"

namespace retort {
namespace {

using test::max_abs_diff;

UNetDenoiser tiny_prompt_unet(int64_t res = 8) {
  UNetOptions o;
  o.channels = 3;
  o.resolution = res;
  o.widths = {8, 16};
  o.time_dim = 16;
  o.groups = 4;
  o.heads = 0;
  o.num_classes = kNumPromptClasses;
  UNetDenoiser u(o, Schedule(ScheduleOptions{}), Prediction::Eps);
  torch::NoGradGuard ng;  // the output layer starts at zero; make every output depend on the input
  for (auto& p : u->parameters()) p.normal_(0, 0.3);
  return u;
}

FieldGenerator voxel_generator(const Prompt& p, int64_t res = 8) {
  FieldSpec spec;
  spec.kind = "voxel";
  spec.voxel.resolution = 12;
  FieldGeneratorOptions o;
  o.resolution = res;
  o.samples = 16;
  o.sparsity_weight = 0.5;
  return FieldGenerator(make_field(spec), p, o);
}

TEST(FieldGenerator, LabelsFollowTheCameraAndGradientsReachTheField) {
  Prompt p = parse_prompt("a red torus");
  auto gen = voxel_generator(p);
  Rng rng(1);
  auto g = gen->draw(6, rng);
  ASSERT_EQ(g.x0.sizes(), (std::vector<int64_t>{6, 3, 8, 8}));
  EXPECT_LE(g.x0.max().item<double>(), 1.0 + 1e-6);
  EXPECT_GE(g.x0.min().item<double>(), -1.0 - 1e-6);
  ASSERT_EQ(g.cond.camera.sizes(), (std::vector<int64_t>{6, 12}));
  // Each label is the prompt with the view of the camera that rendered it.
  auto cams = g.cond.camera;
  for (int64_t i = 0; i < 6; ++i) {
    auto c2w = torch::eye(4);
    c2w.slice(0, 0, 3).copy_(cams[i].view({3, 4}));
    auto sph = spherical_from_c2w(c2w);
    auto want = prompt_class(p.shape, p.colour, view_of(sph.azimuth_deg, sph.elevation_deg));
    EXPECT_EQ(g.cond.labels[i].item<int64_t>(), want) << i;
  }
  auto loss = g.x0.mean() + gen->regularization(rng, Share{});
  loss.backward();
  double grad = 0;
  for (auto& t : gen->parameters())
    if (t.grad().defined()) grad += t.grad().abs().sum().item<double>();
  EXPECT_GT(grad, 0.0);
}

// Coarse-to-fine (generate3d.coarse_levels / coarse_until) and the shading draws of training views.
TEST(FieldGenerator, CoarseToFineScheduleAndShadedTrainingViews) {
  FieldSpec spec;  // a hash grid of 8 levels
  spec.hash = HashGridOptions{.levels = 8, .log2_table = 10, .base_resolution = 4, .max_resolution = 32, .hidden = 8};
  FieldGeneratorOptions o;
  o.resolution = 8;
  o.samples = 8;
  o.coarse_levels = 4;
  o.coarse_until = 0.5;
  FieldGenerator gen(make_field(spec), parse_prompt("a red torus"), o);
  EXPECT_EQ(gen->active_levels(0, 100), 4);
  EXPECT_EQ(gen->active_levels(24, 100), 5);
  EXPECT_EQ(gen->active_levels(25, 100), 6);
  EXPECT_EQ(gen->active_levels(49, 100), 7);
  EXPECT_EQ(gen->active_levels(50, 100), 8);
  EXPECT_EQ(gen->active_levels(100, 100), 8);
  gen->set_progress(10, 100);
  EXPECT_EQ(std::dynamic_pointer_cast<HashGridFieldImpl>(gen->field)->active_levels(), 4);
  gen->set_progress(100, 100);
  EXPECT_EQ(std::dynamic_pointer_cast<HashGridFieldImpl>(gen->field)->active_levels(), 8);

  auto bad = o;
  bad.coarse_levels = 9;
  EXPECT_THROW(FieldGenerator(make_field(spec), parse_prompt("a red torus"), bad), ConfigError);
  bad = o;
  bad.coarse_until = 0;
  EXPECT_THROW(FieldGenerator(make_field(spec), parse_prompt("a red torus"), bad), ConfigError);
  FieldSpec voxel;  // no levels: the schedule does not apply (generate3d's config refuses it)
  voxel.kind = "voxel";
  EXPECT_EQ(FieldGenerator(make_field(voxel), parse_prompt("a red torus"), o)->active_levels(0, 100), 0);

  // Training lights follow the world's distribution (within 60 degrees of the camera's azimuth,
  // 20..70 degrees up); textureless views come at the configured rate; evaluation uses the headlight.
  o.coarse_levels = 0;
  o.shading = true;
  o.textureless = 0.25;
  FieldGenerator shaded(make_field(spec), parse_prompt("a red torus"), o);
  Rng rng(3);
  int textureless = 0;
  const int n = 400;
  for (int i = 0; i < n; ++i) {
    const Camera cam = shaded->random_camera(rng);
    const Shading s = shaded->random_shading(cam, rng);
    ASSERT_TRUE(s.on);
    auto l = s.light.to(torch::kFloat64);
    const double el = std::asin(l[2].item<double>()) * 180 / M_PI;
    const double az = std::atan2(l[1].item<double>(), l[0].item<double>()) * 180 / M_PI;
    const double off = std::remainder(az - cam.azimuth_deg, 360.0);
    EXPECT_GE(el, 20 - 1e-6);
    EXPECT_LE(el, 70 + 1e-6);
    EXPECT_LE(std::abs(off), 60 + 1e-6);
    textureless += s.textureless;
  }
  EXPECT_NEAR(double(textureless) / n, 0.25, 0.07);
  const Camera cam = look_at_origin(10, 15, 1.4, 40);
  EXPECT_LT(max_abs_diff(shaded->eval_shading(cam).light, vec3_tensor(headlight(cam))), 1e-7);
  EXPECT_FALSE(shaded->eval_shading(cam).textureless);
  auto g = shaded->draw(2, rng);
  EXPECT_EQ(g.x0.sizes(), (std::vector<int64_t>{2, 3, 8, 8}));
  EXPECT_TRUE(torch::isfinite(g.x0).all().item<bool>());
}

TEST(FakeScores, ClassEmbeddingStartsAtTheTeacherAndTrainsOnlyPhi) {
  torch::manual_seed(0);
  auto teacher = tiny_prompt_unet();
  freeze(*teacher);
  std::vector<int64_t> classes = {4, 5, 6, 7};
  ClassEmbeddingFake fake(teacher.ptr(), classes);
  auto x = torch::randn({4, 3, 8, 8});
  auto t = torch::full({4}, 0.5);
  auto cond = Cond::classes(torch::tensor({4, 7, 5, 6}, torch::kInt64));
  EXPECT_LT(max_abs_diff(fake->eps(x, t, cond), teacher->eps(x, t, cond)), 1e-6);
  EXPECT_GT(teacher->eps(x, t, cond).abs().mean().item<double>(), 1e-3);  // not trivially zero
  auto params = trainable_parameters(*fake);
  ASSERT_EQ(params.size(), 1u);
  EXPECT_EQ(params[0].sizes(), (std::vector<int64_t>{4, 16}));
  EXPECT_THROW(fake->eps(x, t, Cond::classes(torch::tensor({4, 7, 5, 8}, torch::kInt64))), Error);
}

TEST(FakeScores, CameraConditionedCopyStartsAtTheTeacherAndReadsTheCamera) {
  torch::manual_seed(0);
  auto teacher = tiny_prompt_unet();
  freeze(*teacher);
  auto copy = camera_conditioned_copy(*teacher, 12);
  auto x = torch::randn({2, 3, 8, 8});
  auto t = torch::full({2}, 0.3);
  Cond c = Cond::classes(torch::tensor({1, 2}, torch::kInt64));
  c.camera = torch::randn({2, 12});
  EXPECT_LT(max_abs_diff(copy->eps(x, t, c), teacher->eps(x, t, c)), 1e-6);
  {
    torch::NoGradGuard ng;
    copy->named_parameters()["net.camera_proj.weight"].normal_();
  }
  Cond c2 = c;
  c2.camera = torch::randn({2, 12});
  EXPECT_GT(max_abs_diff(copy->eps(x, t, c), copy->eps(x, t, c2)), 1e-4);
  for (auto& p : copy->parameters()) EXPECT_TRUE(p.requires_grad());
}

TEST(FieldFiles, RoundTripAndRejectOtherFiles) {
  test::TempDir tmp("field-files");
  for (std::string kind : {"hash", "voxel"}) {
    FieldSpec spec;
    spec.kind = kind;
    spec.hash.levels = 4;
    spec.hash.log2_table = 10;
    spec.voxel.resolution = 8;
    torch::manual_seed(3);
    auto f = make_field(spec);
    auto path = tmp.path / (kind + ".safetensors");
    save_field(path, *f, spec);
    FieldSpec back;
    auto g = load_field(path, &back);
    EXPECT_EQ(back.kind, kind);
    auto pts = torch::rand({50, 3}) - 0.5;
    EXPECT_LT(max_abs_diff(f->query(pts).density, g->query(pts).density), 1e-6) << kind;
  }
  auto unet = tiny_prompt_unet();
  save_unet(tmp.path / "unet.safetensors", unet);
  auto msg = test::io_error([&] { load_field(tmp.path / "unet.safetensors"); });
  EXPECT_NE(msg.find("not a retort radiance field"), std::string::npos) << msg;
}

ViewSet true_ring(const Object& o, int64_t k, int64_t res, bool shuffle_colours) {
  ViewSet v;
  std::vector<torch::Tensor> im, de, ma;
  RenderOptions ro;
  ro.light = normalize(Vec3{0.3, 0.2, 0.9});
  for (int64_t i = 0; i < k; ++i) {
    auto cam = look_at_origin(360.0 * i / k, 15, 1.4, 40);
    auto r = render_object(o, cam, res, ro);
    auto img = r.image;
    if (shuffle_colours && i % 2) img = img.roll(1, 0);  // every other view changes colour
    v.cameras.push_back(cam);
    im.push_back(img);
    ma.push_back(r.alpha > 0.5);
    de.push_back(torch::where(torch::isfinite(r.depth), r.depth, torch::zeros_like(r.depth)));
  }
  v.images = torch::stack(im);
  v.depth = torch::stack(de);
  v.mask = torch::stack(ma);
  return v;
}

TEST(ViewConsistency, TrueObjectIsConsistentAndViewDependentColourIsNot) {
  Object o{Shape::cube, Colour::orange, 1.0};
  auto good = view_consistency(true_ring(o, 12, 32, false));
  auto bad = view_consistency(true_ring(o, 12, 32, true));
  EXPECT_GT(good.matched, 0.5);
  EXPECT_LT(good.l1, 0.05);
  EXPECT_GT(bad.l1, 3 * good.l1) << "good " << good.l1 << " bad " << bad.l1;
  ViewSet one = true_ring(o, 1, 16, false);
  EXPECT_THROW(view_consistency(one), Error);
}

TEST(Generate3d, ConfigErrorsNameTheKey) {
  auto bad = [](const std::string& toml, const std::string& prompt = "", const std::string& method = "") {
    try {
      std::vector<std::string> sets;  // the CLI's --prompt and --method
      if (!prompt.empty()) sets.push_back("prompt=\"" + prompt + "\"");
      if (!method.empty()) sets.push_back("generate3d.method=" + method);
      auto root = ConfigNode::from_string(toml, "g.toml", sets);
      read_generate3d_config(root);
      root.finish();
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(bad("[generate3d]\nmethod = \"dmd\"\n").find("generate3d.method"), std::string::npos);
  EXPECT_NE(bad("", "", "vds").find("generate3d.method: unknown value 'vds'"), std::string::npos);
  EXPECT_NE(bad("prompt = \"a red pyramid\"\n").find("pyramid"), std::string::npos);
  EXPECT_NE(bad("", "a red torus, side view").find("view suffix"), std::string::npos);
  EXPECT_NE(bad("[generate3d]\nelevation = [50, 10]\n").find("generate3d.elevation"), std::string::npos);
  EXPECT_NE(bad("[field]\nkind = \"mesh\"\n").find("field.kind"), std::string::npos);
  EXPECT_NE(bad("[generate3d]\nitrations = 5\n").find("itrations"), std::string::npos);
  EXPECT_NE(bad("[generate3d]\ncoarse_levels = 13\n").find("g.toml: generate3d.coarse_levels: 13 exceeds"),
            std::string::npos);
  EXPECT_NE(bad("[generate3d]\ncoarse_levels = 2\n[field]\nkind = \"voxel\"\n").find("generate3d.coarse_levels"),
            std::string::npos);
  EXPECT_NE(bad("[generate3d]\ntextureless = 1.5\n").find("generate3d.textureless"), std::string::npos);
  auto root = ConfigNode::from_string("[generate3d]\nmethod = \"sds\"\n", "g.toml");
  EXPECT_DOUBLE_EQ(read_generate3d_config(root).objective.cfg_scale, 100.0);  // DreamFusion's lambda
  auto root2 = ConfigNode::from_string("", "g.toml");
  EXPECT_DOUBLE_EQ(read_generate3d_config(root2).objective.cfg_scale, 7.5);
  // A preset is a default: a value the user gives wins, 7.5 included (no sentinel).
  auto root3 = ConfigNode::from_string("[generate3d]\nmethod = \"sds\"\ncfg_scale = 7.5\n", "g.toml");
  EXPECT_DOUBLE_EQ(read_generate3d_config(root3).objective.cfg_scale, 7.5);
  // --set wins over the file and is checked like it.
  auto root4 = ConfigNode::from_string("[generate3d]\nmethod = \"asd\"\n", "g.toml", {"generate3d.method=sds"});
  EXPECT_DOUBLE_EQ(read_generate3d_config(root4).objective.cfg_scale, 100.0);
  EXPECT_NE(bad("[generate3d]\nfake = \"copy\"\n").find("no error"), std::string::npos);
  auto root5 = ConfigNode::from_string("[generate3d]\nfake = \"copy\"\n", "g.toml");
  EXPECT_DOUBLE_EQ(read_generate3d_config(root5).loop.critic_optim.lr, 1e-4);
}

}  // namespace
}  // namespace retort
