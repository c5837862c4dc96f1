// Text-to-3D plumbing: the field generator's views and labels, the fake scores of VSD / ASD, field
// files, the multi-view consistency measure, and generate3d's config errors. The end-to-end run
// (a score-distilled field that the classifier recognises better than its start) is in
// text3d_e2e_test.cpp.
#include <gtest/gtest.h>

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
