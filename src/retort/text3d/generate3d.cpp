#include "retort/text3d/generate3d.h"

#include <chrono>

#include <fmt/format.h>

#include "retort/core/error.h"
#include "retort/core/runtime_config.h"
#include "retort/io/png.h"
#include "retort/field/marching_cubes.h"
#include "retort/field/mesh_io.h"
#include "retort/field/mesh_preview.h"
#include "retort/field/turntable.h"
#include "retort/models/fake_score.h"
#include "retort/models/unet.h"
#include "retort/plot/curves.h"
#include "retort/train/checkpoint.h"
#include "retort/run/run_folder.h"

namespace retort {
namespace fs = std::filesystem;

std::vector<std::string> generate3d_method_names() { return {"sds", "vsd", "asd"}; }

void apply_generate3d_presets(Generate3dConfig& c) {
  c.objective.cfg_scale = c.method == "sds" ? 100.0 : 7.5;  // DreamFusion's 100 for SDS (methods.md)
  c.loop.critic_optim.lr = c.fake == "copy" ? 1e-4 : 1e-3;   // a whole UNet copy wants a smaller rate
}

namespace {

// An [min, max] pair within [lo, hi].
template <class C>
typename OptionTable<C>::Row interval(const std::string& key, double* (*ref)(C&), double lo, double hi,
                                      const std::string& help) {
  typename OptionTable<C>::Row r;
  r.key = key;
  r.help = help;
  r.range = fmt::format("[min, max] within [{}, {}]", lo, hi);
  r.read = [=](ConfigNode& n, C& c) {
    double* v = ref(c);
    auto got = n.numbers(key, {v[0], v[1]});
    if (got.size() != 2 || got[0] > got[1] || got[0] < lo || got[1] > hi)
      n.fail(key, fmt::format("expected [min, max] with {} <= min <= max <= {}", lo, hi));
    v[0] = got[0];
    v[1] = got[1];
  };
  r.show = [=](const C& c) {
    const double* v = ref(const_cast<C&>(c));
    return fmt::format("[{}, {}]", v[0], v[1]);
  };
  r.save = [=](const C& c, nlohmann::json& j) { j[key] = {ref(const_cast<C&>(c))[0], ref(const_cast<C&>(c))[1]}; };
  r.load = [=](const nlohmann::json& j, C& c) {
    if (j.contains(key)) ref(c)[0] = j.at(key).at(0).get<double>(), ref(c)[1] = j.at(key).at(1).get<double>();
  };
  return r;
}

}  // namespace

const OptionTable<Generate3dConfig>& generate3d_option_table() {
  static const auto table = [] {
    using C = Generate3dConfig;
    OptionTable<C> t;
    t.choice("method", &C::method, generate3d_method_names(), "the objective (presets below)")
        .choice("fake", &C::fake, {"embedding", "copy", "lora"},
                "VSD / ASD φ: embedding (textual inversion, one per view suffix), copy (camera-conditioned "
                "trainable copy of the teacher) or lora (LoRA adapters on the frozen teacher plus the "
                "zero-initialised camera map, as ASD's official code)")
        .include(unet_lora_option_table(), &C::lora)
        .include(distill_loop_option_table(), &C::loop,
                 {"steps", "batch", "critic_steps", "share_noise", "lr", "critic_lr", "grad_clip", "critic_grad_clip",
                  "t_min", "t_max", "anneal", "anneal_to", "anneal_at", "log_every", "checkpoint_every",
                  "max_nonfinite_skips"})
        .include(objective_option_table(), &C::objective, {"cfg_scale", "gamma", "weighting"})
        .integer("resolution", [](C& c) -> int64_t& { return c.render.resolution; }, 8, 256, "rendered size (the teacher's)")
        .integer("samples", [](C& c) -> int64_t& { return c.render.samples; }, 4, 1024, "samples per ray")
        .flag("stratified", [](C& c) -> bool& { return c.render.stratified; }, "jittered ray samples")
        .number("sparsity_weight", [](C& c) -> double& { return c.render.sparsity_weight; }, 0, 1e6,
                "penalty on total opacity")
        .number("opaque_weight", [](C& c) -> double& { return c.render.opaque_weight; }, 0, 1e6,
                "penalty on semi-transparent pixels")
        .flag("shading", [](C& c) -> bool& { return c.render.shading; },
              "DreamFusion's shading: the colour is an albedo lit by a random world light (Lambert, normals from "
              "the density gradient)")
        .number("ambient", [](C& c) -> double& { return c.render.ambient; }, 0, 1, "shading's ambient term")
        .number("textureless", [](C& c) -> double& { return c.render.textureless; }, 0, 1,
                "probability of a textureless (white albedo) training view, with shading")
        .number("normal_eps", [](C& c) -> double& { return c.render.normal_eps; }, 1e-4, 0.1,
                "finite-difference step of the shading normals (box units)")
        .integer("coarse_levels", [](C& c) -> int64_t& { return c.render.coarse_levels; }, 0, 64,
                 "hash grid levels active at the start (coarse-to-fine); 0 = all")
        .number("coarse_until", [](C& c) -> double& { return c.render.coarse_until; }, 1e-3, 1,
                "fraction of the iterations after which every level is active")
        .custom(interval<C>("azimuth", [](C& c) { return c.render.cameras.azimuth; }, -360, 720, "camera azimuth, degrees"))
        .custom(interval<C>("elevation", [](C& c) { return c.render.cameras.elevation; }, -90, 90, "camera elevation, degrees"))
        .custom(interval<C>("distance", [](C& c) { return c.render.cameras.distance; }, 0.75, 100, "camera distance"))
        .custom(interval<C>("fovy", [](C& c) { return c.render.cameras.fovy; }, 1, 170, "vertical field of view, degrees"))
        .numbers("background", [](C& c) -> std::array<double, 3>& { return c.render.background; }, 0, 1,
                 "[r, g, b] behind the field")
        .integer("seed", [](C& c) -> uint64_t& { return c.seed; }, 0, INT64_MAX, "random seed")
        .check([](ConfigNode& n, const C& c) {
          if (c.loop.checkpoint_every < 1) n.fail("checkpoint_every", "generate3d resumes from checkpoints: give >= 1");
        });
    return t;
  }();
  return table;
}

const OptionTable<Generate3dOutputs>& generate3d_output_option_table() {
  static const auto table = [] {
    using O = Generate3dOutputs;
    OptionTable<O> t;
    t.integer("views", &O::views, 1, 64, "views in views.png")
        .integer("resolution", &O::resolution, 8, 1024, "size of views.png and the turntable")
        .integer("gif_frames", &O::gif_frames, 1, 720, "turntable frames")
        .integer("mesh_resolution", &O::mesh_resolution, 8, 512, "marching-cubes grid per axis")
        .number("mesh_threshold", &O::mesh_threshold, 0, 1e6, "density isosurface of the mesh");
    return t;
  }();
  return table;
}

const OptionTable<Generate3dConfig>& generate3d_top_option_table() {
  static const auto table = [] {
    using C = Generate3dConfig;
    OptionTable<C> t;
    t.text("teacher", &C::teacher, "the prompt-conditioned teacher (train-teacher on a world data set), or a "
                                   "TorchScript archive (.pt) of one")
        .text("prompt", &C::prompt, "\"a COLOUR SHAPE\" (a view suffix is refused)");
    return t;
  }();
  return table;
}

Generate3dConfig read_generate3d_config(ConfigNode& root) {
  Generate3dConfig c;
  generate3d_top_option_table().read(root, c);
  if (root.has("torchscript")) {
    auto n = root.table("torchscript");
    c.teacher_contract = read_script_contract(n);
  }
  auto g = root.table("generate3d");
  const auto& T = generate3d_option_table();
  T.read_key(g, c, "method");
  T.read_key(g, c, "fake");
  apply_generate3d_presets(c);
  T.read(g, c);
  c.field = read_field_spec(root.table("field"));
  if (c.render.coarse_levels > 0 && c.field.kind != "hash")
    g.fail("coarse_levels", "coarse-to-fine needs field.kind = \"hash\" (a field with levels)");
  if (c.render.coarse_levels > c.field.hash.levels)
    g.fail("coarse_levels", fmt::format("{} exceeds the hash grid's field.levels = {}", c.render.coarse_levels,
                                        c.field.hash.levels));
  auto o = root.table("output");
  generate3d_output_option_table().read(o, c.outputs);
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
  t.render.shading = gen->shading();  // unlit: each frame gets its headlight
  return render_turntable(*gen->field, t);
}

// Returns whether a mesh was written (an empty field has none).
bool write_outputs(FieldGenerator& gen, const Generate3dConfig& cfg, const fs::path& out) {
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
    write_png_grid(out / "mesh.png", render_mesh_preview(mesh) * 2 - 1, 4);
    return true;
  } catch (const Error& e) {
    // An empty field is a result too (e.g. a collapsed run); say so instead of failing the run.
    fs::remove(out / "mesh.obj");
    fs::remove(out / "mesh.ply");
    fs::remove(out / "mesh.png");
    fmt::print(stderr, "retort: generate3d: no mesh written: {}\n", e.what());
    return false;
  }
}

}  // namespace

Generate3dResult run_generate3d(const Generate3dConfig& cfg, const fs::path& out, bool progress,
                                const std::string& config_text) {
  // The teacher is read and checked before the run folder is made: a wrong one changes nothing.
  auto teacher = load_diffusion_model(cfg.teacher, nullptr, cfg.teacher_contract ? &*cfg.teacher_contract : nullptr);
  const auto topt = teacher->shape();
  const auto unet = std::dynamic_pointer_cast<UNetDenoiserImpl>(teacher);
  if (topt.num_classes != kNumPromptClasses || topt.channels != 3)
    throw ConfigError(fmt::format("teacher {}: expected an RGB teacher with {} prompt classes (retort train-teacher on "
                                  "the world data set), got {} channels and {} classes",
                                  cfg.teacher.string(), kNumPromptClasses, topt.channels, topt.num_classes));
  if (topt.resolution != cfg.render.resolution)
    throw ConfigError(fmt::format("generate3d.resolution = {} but the teacher {} takes {}x{} images",
                                  cfg.render.resolution, cfg.teacher.string(), topt.resolution, topt.resolution));
  if (!unet && cfg.method != "sds" && cfg.fake != "copy")
    throw ConfigError(fmt::format("generate3d.fake = \"{}\" needs the teacher's {}, which the TorchScript teacher {} "
                                  "does not expose; use fake = \"copy\"",
                                  cfg.fake, cfg.fake == "lora" ? "layers" : "condition embedding",
                                  cfg.teacher.string()));
  auto device = start_run(out, cfg.runtime);
  Prompt prompt = parse_prompt(cfg.prompt);  // checked by read_generate3d_config
  torch::manual_seed(cfg.seed);
  Rng rng(cfg.seed);
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
      fake = ClassEmbeddingFake(teacher, classes).ptr();
    } else if (unet && cfg.fake == "lora") {
      fake = lora_copy(*unet, cfg.lora, 12).ptr();
    } else if (unet) {
      fake = camera_conditioned_copy(*unet, 12).ptr();
    } else {
      fake = teacher->copy();  // a TorchScript module has no camera input to add: a plain copy
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
  res.mesh_written = write_outputs(gen, cfg, out);
  return res;
}

}  // namespace retort
