// Text-to-3D end to end at toy size: render a small world (2 shapes x 2 colours, 16 px), train a
// prompt-conditioned teacher and a classifier on it, run generate3d, and check that the classifier
// recognises the prompt in renders of the distilled field better than in renders of the initial
// blob (the acceptance test; seed 002's Table 1 in miniature).
#include <fmt/format.h>
#include <gtest/gtest.h>

#include "retort/models/classifier.h"
#include "retort/render/world_dataset.h"
#include "retort/text3d/generate3d.h"
#include "retort/image/evaluator_train.h"
#include "retort/image/teacher_train.h"
#include "test_util.h"

namespace retort {
namespace {

// Mean classifier probability of the prompt's object class over fixed views of a field.
double prompt_probability(Classifier& clf, std::shared_ptr<RadianceField> field, const Prompt& p,
                          const FieldGeneratorOptions& ro) {
  FieldGenerator gen(field, p, ro);
  std::vector<Camera> cams;
  for (int i = 0; i < 12; ++i) cams.push_back(look_at_origin(30.0 * i, 10 + 2.5 * i, 1.4, 37.5));
  torch::NoGradGuard ng;
  auto images = gen->render(cams, ro.resolution, false).x0;
  clf->eval();
  auto probs = torch::softmax(clf->forward(images), 1);
  return probs.select(1, object_class(p.shape, p.colour)).mean().item<double>();
}

TEST(Text3dEndToEnd, DistilledFieldIsRecognisedBetterThanTheBlob) {
  test::TempDir tmp("text3d-e2e");
  WorldDatasetOptions w;
  w.n = 1200;
  w.resolution = 16;
  w.shapes = {Shape::sphere, Shape::cube};
  w.colours = {Colour::red, Colour::blue};
  w.cameras.distance[0] = 1.2, w.cameras.distance[1] = 1.6;
  w.cameras.fovy[0] = 30, w.cameras.fovy[1] = 45;
  render_world_dataset(w, tmp.path / "world.safetensors", false);
  const std::string data = fmt::format("[data]\nsource = \"world\"\npath = \"{0}\"\ntest_path = \"{0}\"\n",
                                       (tmp.path / "world.safetensors").string());

  auto troot = ConfigNode::from_string(data + "labels = \"prompt\"\n"
                                              "[model]\nwidths = [16, 32]\ntime_dim = 32\ngroups = 8\nheads = 1\n"
                                              "prediction = \"v\"\n[schedule]\nkind = \"cosine\"\n"
                                              "[train]\nsteps = 500\nbatch = 32\nlr = 2e-3\nwarmup = 20\nema = 0.99\n"
                                              "checkpoint_every = 1000\nlog_every = 100\n[preview]\nsteps = 2\n"
                                              "classes = 2\nper_class = 2\n",
                                       "teacher.toml");
  train_teacher(read_teacher_config(troot), tmp.path / "teacher", false, troot.resolved_toml());

  auto eroot = ConfigNode::from_string(data + "labels = \"object\"\n[evaluator]\nsteps = 150\nbatch = 64\n"
                                              "lr = 2e-3\nwarmup = 10\nwidth = 16\nfeature_dim = 32\n"
                                              "checkpoint_every = 1000\nmonitor = 200\n",
                                       "evaluator.toml");
  auto ecfg = read_evaluator_config(eroot);
  auto report = train_evaluator(ecfg, tmp.path / "evaluator", false, ecfg.resolved);
  ASSERT_GT(report.test_accuracy, 0.9) << "the judge itself must work";
  auto clf = load_classifier(tmp.path / "evaluator" / "evaluator.safetensors");

  auto groot = ConfigNode::from_string(
      fmt::format("teacher = \"{}\"\nprompt = \"a red cube\"\n", (tmp.path / "teacher" / "teacher.safetensors").string()) +
          "[generate3d]\nmethod = \"asd\"\nsteps = 150\nresolution = 16\nsamples = 32\ncfg_scale = 7.5\n"
          "lr = 0.05\nlog_every = 50\ncheckpoint_every = 1000\n"
          "[field]\nkind = \"voxel\"\nresolution = 24\n"
          "[output]\nviews = 4\nresolution = 16\ngif_frames = 4\nmesh_resolution = 24\nmesh_threshold = 5\n",
      "generate3d.toml");
  auto gcfg = read_generate3d_config(groot);
  groot.finish();
  torch::manual_seed(gcfg.seed);
  double before = prompt_probability(clf, make_field(gcfg.field), parse_prompt(gcfg.prompt), gcfg.render);
  run_generate3d(gcfg, tmp.path / "asd", false, groot.resolved_toml());
  double after = prompt_probability(clf, load_field(tmp.path / "asd" / "field.safetensors"),
                                    parse_prompt(gcfg.prompt), gcfg.render);
  fmt::print("p(red cube): initial blob {:.3f}, after ASD {:.3f}\n", before, after);
  EXPECT_GT(after, before + 0.2) << "p(red cube) of the initial blob " << before << ", after ASD " << after;
  for (auto f : {"views.png", "turntable.gif", "loss.png", "checkpoint.pt", "field.safetensors"})
    EXPECT_TRUE(std::filesystem::exists(tmp.path / "asd" / f)) << f;
}

}  // namespace
}  // namespace retort
