#include "retort/text3d/generate3d.h"

#include <chrono>

#include <fmt/format.h>

#include "retort/core/error.h"
#include "retort/core/runtime_config.h"
#include "retort/data/image_folder.h"
#include "retort/field/marching_cubes.h"
#include "retort/field/mesh_io.h"
#include "retort/field/turntable.h"
#include "retort/models/fake_score.h"
#include "retort/models/unet.h"
#include "retort/plot/curves.h"
#include "retort/train/checkpoint.h"

namespace retort {
namespace fs = std::filesystem;

std::vector<std::string> generate3d_method_names() { return {"sds", "vsd", "asd"}; }

Generate3dConfig read_generate3d_config(ConfigNode& root, const std::string& prompt, const std::string& method) {
  Generate3dConfig c;
  c.teacher = root.string("teacher", "weights/world-teacher.safetensors");
  c.prompt = root.string("prompt", c.prompt);
  if (!prompt.empty()) c.prompt = prompt;
  auto g = root.table("generate3d");
  c.method = g.choice("method", c.method, generate3d_method_names());
  if (!method.empty()) {
    if (method != "sds" && method != "vsd" && method != "asd")
      throw ConfigError(fmt::format("--method: unknown value '{}'; known: sds, vsd, asd", method));
    c.method = method;
  }
  c.fake = g.choice("fake", c.fake, {"embedding", "copy"});
  auto& L = c.loop;
  L.steps = g.integer("iterations", 600, 1, 10'000'000);
  L.batch = g.integer("batch", 1, 1, 64);
  L.critic_steps = g.integer("critic_steps", 1, 1, 100);
  L.share_noise = g.boolean("share_noise", true);
  L.gen_optim = OptimOptions{g.number("lr", 1e-2, 1e-8, 10), 0.9, 0.99, 0.0, g.number("grad_clip", 0.0, 0, 1e9)};
  double fake_lr_default = c.fake == "embedding" ? 1e-3 : 1e-4;
  L.critic_optim = OptimOptions{g.number("fake_lr", fake_lr_default, 1e-10, 10), 0.9, 0.999, 0.0, 10.0};
  L.time.min = g.number("t_min", 0.02, 0, 1);
  L.time.max = g.number("t_max", 0.98, 0, 1);
  if (L.time.min >= L.time.max) g.fail("t_min", fmt::format("{} is not below t_max = {}", L.time.min, L.time.max));
  L.time.anneal = parse_anneal(g.choice("anneal", "step", {"none", "step", "linear"}));
  L.time.anneal_to = g.number("anneal_to", 0.5, 0, 1);
  L.time.anneal_at = g.number("anneal_at", 0.2, 0, 1);
  L.log_every = g.integer("log_every", 10, 1, 1'000'000);
  L.checkpoint_every = g.integer("checkpoint_every", 100, 1, 100'000'000);
  auto& O = c.objective;
  O.cfg_scale = g.number("cfg_scale", c.method == "sds" ? 100.0 : 7.5, 0, 1000);
  O.gamma = g.number("gamma", -0.75, -10, 10);
  O.weighting = parse_weighting(g.choice("weighting", "sigma2", weighting_names()));
  auto& R = c.render;
  R.resolution = g.integer("resolution", 32, 8, 256);
  R.samples = g.integer("samples", 64, 4, 1024);
  R.stratified = g.boolean("stratified", true);
  R.sparsity_weight = g.number("sparsity_weight", 0.0, 0, 1e6);
  R.opaque_weight = g.number("opaque_weight", 0.0, 0, 1e6);
  auto range = [&](const std::string& key, double* r, double lo, double hi) {
    auto v = g.numbers(key, {r[0], r[1]});
    if (v.size() != 2 || v[0] > v[1] || v[0] < lo || v[1] > hi)
      g.fail(key, fmt::format("expected [min, max] with {} <= min <= max <= {}", lo, hi));
    r[0] = v[0];
    r[1] = v[1];
  };
  range("azimuth", R.cameras.azimuth, -360, 720);
  range("elevation", R.cameras.elevation, -90, 90);
  range("distance", R.cameras.distance, 0.75, 100);
  range("fovy", R.cameras.fovy, 1, 170);
  auto bg = g.numbers("background", {1, 1, 1});
  if (bg.size() != 3) g.fail("background", "expected [r, g, b] in [0, 1]");
  for (int i = 0; i < 3; ++i) R.background[i] = bg[i];
  c.seed = uint64_t(g.integer("seed", 0, 0, INT64_MAX));
  c.field = read_field_spec(root.table("field"));
  auto o = root.table("output");
  auto& Out = c.outputs;
  Out.views = o.integer("views", Out.views, 1, 64);
  Out.resolution = o.integer("resolution", Out.resolution, 8, 1024);
  Out.gif_frames = o.integer("gif_frames", Out.gif_frames, 1, 720);
  Out.mesh_resolution = o.integer("mesh_resolution", Out.mesh_resolution, 8, 512);
  Out.mesh_threshold = o.number("mesh_threshold", Out.mesh_threshold, 0, 1e6);
  c.runtime = read_runtime_options(root.table("runtime"));
  root.ignore({"evaluator", "prompts", "methods", "eval3d"});  // eval3d's keys; it shares the file
  // Fail before any slow work, naming the word.
  Prompt parsed;
  try {
    parsed = parse_prompt(c.prompt);
  } catch (const Error& e) {
    throw ConfigError(fmt::format("prompt '{}': {}", c.prompt, e.what()));
  }
  if (parsed.view)
    throw ConfigError(fmt::format("prompt '{}': leave out the view suffix; each camera adds its own", c.prompt));
  return c;
}

namespace {

// views.png and the turntable: an orbit at 15 degrees elevation, in the middle of the training
// cameras' distance and field of view, over the training background.
torch::Tensor orbit(const Generate3dConfig& cfg, FieldGenerator& gen, int64_t frames) {
  const auto& r = cfg.render;
  TurntableOptions t;
  t.frames = frames;
  t.elevation_deg = 15.0;
  t.distance = 0.5 * (r.cameras.distance[0] + r.cameras.distance[1]);
  t.fov_y_deg = 0.5 * (r.cameras.fovy[0] + r.cameras.fovy[1]);
  t.resolution = cfg.outputs.resolution;
  t.render.samples = r.samples;
  t.render.background = torch::tensor({r.background[0], r.background[1], r.background[2]}, torch::kFloat32);
  return render_turntable(*gen->field, t);
}

void write_outputs(FieldGenerator& gen, const Generate3dConfig& cfg, const fs::path& out) {
  const auto& O = cfg.outputs;
  write_png_grid(out / "views.png", orbit(cfg, gen, O.views) * 2 - 1, O.views);
  auto frames = orbit(cfg, gen, O.gif_frames);
  write_gif(out / "turntable.gif", frames, 12);
  write_mp4(out / "turntable.mp4", frames, 24);
  try {
    MeshExtractOptions mo;
    mo.resolution = O.mesh_resolution;
    mo.threshold = O.mesh_threshold;
    auto mesh = extract_mesh(*gen->field, mo);
    write_obj(out / "mesh.obj", mesh);
    write_ply(out / "mesh.ply", mesh);
  } catch (const Error& e) {
    // An empty field is a result too (e.g. a collapsed run); say so instead of failing the run.
    fs::remove(out / "mesh.obj");
    fs::remove(out / "mesh.ply");
    fmt::print(stderr, "retort: generate3d: no mesh written: {}\n", e.what());
  }
}

}  // namespace

Generate3dResult run_generate3d(const Generate3dConfig& cfg, const fs::path& out, bool progress,
                                const std::string& config_text) {
  auto device = start_run(out, cfg.runtime);
  Prompt prompt = parse_prompt(cfg.prompt);  // checked by read_generate3d_config
  torch::manual_seed(cfg.seed);
  Rng rng(cfg.seed);

  auto teacher = load_unet(cfg.teacher);
  const auto& topt = teacher->net->options();
  if (topt.num_classes != kNumPromptClasses || topt.channels != 3)
    throw ConfigError(fmt::format("teacher {}: expected an RGB teacher with {} prompt classes (retort train-teacher on "
                                  "the world data set), got {} channels and {} classes",
                                  cfg.teacher.string(), kNumPromptClasses, topt.channels, topt.num_classes));
  if (topt.resolution != cfg.render.resolution)
    throw ConfigError(fmt::format("generate3d.resolution = {} but the teacher {} takes {}x{} images",
                                  cfg.render.resolution, cfg.teacher.string(), topt.resolution, topt.resolution));
  freeze(*teacher);
  teacher->eval();
  teacher->to(device);

  FieldGenerator gen(make_field(cfg.field), prompt, cfg.render);
  gen->to(device);
  auto objective = make_objective(cfg.method, cfg.objective, teacher->schedule);
  std::shared_ptr<Denoiser> fake;
  if (objective->needs().fake) {
    if (cfg.fake == "embedding") {
      std::vector<int64_t> classes;
      for (int64_t v = 0; v < kNumViews; ++v) classes.push_back(prompt_class(prompt.shape, prompt.colour, View(v)));
      fake = ClassEmbeddingFake(teacher.ptr(), classes).ptr();
    } else {
      fake = camera_conditioned_copy(*teacher, 12).ptr();
    }
    fake->to(device);
  }
  Models models{teacher.get(), fake.get(), nullptr};
  require_same_config(out / "checkpoint.pt", config_text);
  write_text_atomic(out / "config.resolved.toml", config_text);  // after the check: a refused run changes nothing

  DistillLoopOptions L = cfg.loop;
  L.progress = progress;
  L.label = fmt::format("{} '{}'", cfg.method, cfg.prompt);
  DistillLoop loop(L, *gen, *objective, models, fake.get(), RealSampler{}, teacher->schedule, device);
  auto t0 = std::chrono::steady_clock::now();
  loop.run(out, rng, config_text);
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  Generate3dResult res;
  res.iterations = loop.step();
  int64_t trained = loop.step() - loop.start_step();
  res.seconds_per_iteration = trained > 0 ? secs / trained : 0.0;
  std::vector<std::string> curves = {"gen_loss"};
  if (fake) curves.push_back("critic_loss");  // SDS trains nothing but the field
  plot_metrics_csv(out / "metrics.csv", out / "loss.png", curves, fmt::format("{}: '{}'", cfg.method, cfg.prompt),
                   false);
  save_field(out / "field.safetensors", *gen->field, cfg.field);
  write_outputs(gen, cfg, out);
  return res;
}

}  // namespace retort
