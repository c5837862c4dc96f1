#include "retort/text2d/generate2d.h"

#include <algorithm>
#include <chrono>
#include <map>
#include <set>

#include <fmt/format.h>
#include <fmt/ranges.h>  // fmt::join ({fmt} 11 moved it here)
#include <nlohmann/json.hpp>

#include "retort/core/error.h"
#include "retort/core/runtime_config.h"
#include "retort/io/png.h"
#include "retort/io/safetensors.h"
#include "retort/models/fake_score.h"
#include "retort/plot/curves.h"
#include "retort/run/run_folder.h"
#include "retort/train/checkpoint.h"

namespace retort {
namespace fs = std::filesystem;

std::vector<std::string> generate2d_method_names() { return {"sds", "vsd", "asd"}; }
std::vector<std::string> generate2d_fake_names() { return {"embedding", "lora", "copy"}; }

void apply_generate2d_presets(Generate2dConfig& c) {
  c.objective.cfg_scale = c.method == "sds" ? 100.0 : 7.5;  // DreamFusion's 100 for SDS (methods.md)
  c.loop.critic_optim.lr = c.fake == "copy" ? 1e-4 : 1e-3;   // a whole UNet copy wants a smaller rate
}

const OptionTable<Generate2dConfig>& generate2d_option_table() {
  static const auto table = [] {
    using C = Generate2dConfig;
    OptionTable<C> t;
    t.choice("method", &C::method, generate2d_method_names(), "the objective (presets below)")
        .choice("fake", &C::fake, generate2d_fake_names(),
                "VSD / ASD φ: embedding (a learned condition embedding per class, ASD's textual inversion), lora "
                "(LoRA adapters on the frozen teacher, ProlificDreamer's and ASD's code) or copy (a trainable copy of "
                "the teacher)")
        .include(unet_lora_option_table(), &C::lora)
        .include(distill_loop_option_table(), &C::loop,
                 {"steps", "batch", "critic_steps", "share_noise", "lr", "critic_lr", "grad_clip", "critic_grad_clip",
                  "t_min", "t_max", "anneal", "anneal_to", "anneal_at", "log_every", "checkpoint_every",
                  "max_nonfinite_skips"})
        .include(objective_option_table(), &C::objective, {"cfg_scale", "gamma", "eta", "asd_real", "weighting"})
        .integer("particles", &C::particles, 1, 100000, "image particles per prompt")
        .number("init_std", &C::init_std, 0, 10, "the particles start N(0, init_std²)")
        .integer("seed", [](C& c) -> uint64_t& { return c.seed; }, 0, INT64_MAX, "random seed")
        .check([](ConfigNode& n, const C& c) {
          if (c.loop.checkpoint_every < 1) n.fail("checkpoint_every", "generate2d resumes from checkpoints: give >= 1");
          if (c.objective.asd_real && c.method != "asd")
            n.fail("asd_real", fmt::format("Eq. 5 (real data) is ASD's discriminator loss; method = \"{}\"", c.method));
        });
    return t;
  }();
  return table;
}

const OptionTable<Generate2dConfig>& generate2d_top_option_table() {
  static const auto table = [] {
    using C = Generate2dConfig;
    OptionTable<C> t;
    t.text("teacher", &C::teacher, "the class- or prompt-conditioned UNet teacher (fmnist-teacher, world-teacher)")
        .strings("prompts", &C::prompts, {},
                 "one run optimises `particles` images per prompt: a Fashion-MNIST class name (\"sneaker\") or a "
                 "world prompt (\"a red torus, front view\"; without a view the particles take the views in turn) "
                 "or a class id")
        .check([](ConfigNode& n, const C& c) {
          if (c.prompts.empty()) n.fail("prompts", "give at least one prompt");
          for (const auto& p : c.prompts)
            if (auto why = prompt_problem(p); !why.empty()) n.fail("prompts", why);
        });
    return t;
  }();
  return table;
}

Generate2dConfig read_generate2d_keys(const Generate2dConfig& base, ConfigNode& g, ConfigNode* over) {
  Generate2dConfig c = base;
  const auto& T = generate2d_option_table();
  for (const std::string key : {"method", "fake"}) {
    if (over && over->has(key))
      T.read_key(*over, c, key);
    else
      T.read_key(g, c, key);
  }
  apply_generate2d_presets(c);
  T.read(g, c);
  if (over) T.read(*over, c);
  if (c.objective.asd_real && !c.data) {
    ConfigNode& n = over && over->has("asd_real") ? *over : g;
    n.fail("asd_real",
           "ASD's Eq. 5 needs real images of the prompts' classes: add a [data] table (Fashion-MNIST for the "
           "fmnist teacher); text prompts have no real data set, so use Eq. 6 (asd_real = false)");
  }
  return c;
}

Generate2dConfig read_generate2d_config(ConfigNode& root) {
  Generate2dConfig c;
  generate2d_top_option_table().read(root, c);
  if (root.has("data")) c.data = read_data_config(root.table("data"));
  c.runtime = read_runtime_options(root.table("runtime"));
  auto g = root.table("generate2d");
  return read_generate2d_keys(c, g, nullptr);
}

namespace {

// Random real images whose classes follow the particles' labels: a particle is drawn, then an image
// of its class.
RealSampler class_sampler(const ImageDataset& data, const torch::Tensor& particle_labels, const torch::Device& device) {
  std::map<int64_t, torch::Tensor> pools;
  auto plabels = particle_labels.cpu();
  for (int64_t k : std::set<int64_t>(plabels.data_ptr<int64_t>(), plabels.data_ptr<int64_t>() + plabels.numel()))
    pools[k] = (data.labels == k).nonzero().flatten();
  auto images = data.images;
  return [images, pools, plabels, device](int64_t n, Rng& rng) {
    auto pick = rng.randint(0, plabels.size(0), {n});
    auto u = rng.rand({n}).to(torch::kFloat64);
    std::vector<int64_t> idx, lab;
    for (int64_t i = 0; i < n; ++i) {
      int64_t k = plabels[pick[i].item<int64_t>()].item<int64_t>();
      const auto& pool = pools.at(k);
      int64_t j = std::min<int64_t>(pool.size(0) - 1, int64_t(u[i].item<double>() * double(pool.size(0))));
      idx.push_back(pool[j].item<int64_t>());
      lab.push_back(k);
    }
    auto x = images.index_select(0, torch::tensor(idx, torch::kInt64)).to(device);
    return GenBatch{x, Cond::classes(torch::tensor(lab, torch::kInt64).to(device))};
  };
}

int64_t grid_columns(const Generate2dConfig& cfg) { return std::min<int64_t>(cfg.particles, 16); }

}  // namespace

Generate2dResult run_generate2d(const Generate2dConfig& cfg, const fs::path& out, bool progress,
                                const std::string& config_text) {
  // The teacher, the prompts and the real data are checked before the run folder is made.
  auto teacher = load_diffusion_model(cfg.teacher);
  const auto topt = teacher->shape();
  const auto unet = std::dynamic_pointer_cast<UNetDenoiserImpl>(teacher);
  if (topt.num_classes < 1)
    throw ConfigError(fmt::format("teacher {}: generate2d needs a class- or prompt-conditioned teacher; this one is "
                                  "unconditional",
                                  cfg.teacher.string()));
  if (!unet && cfg.method != "sds" && cfg.fake != "copy")
    throw ConfigError(fmt::format("generate2d.fake = \"{}\" needs the layers and condition embedding of a retort UNet; "
                                  "the teacher {} takes fake = \"copy\"",
                                  cfg.fake, cfg.teacher.string()));
  std::vector<int64_t> all;
  for (const auto& p : cfg.prompts)
    for (auto l : prompt_labels(p, topt.num_classes, cfg.particles)) all.push_back(l);
  auto labels = torch::tensor(all, torch::kInt64);
  const std::set<int64_t> class_set(all.begin(), all.end());
  const std::vector<int64_t> classes(class_set.begin(), class_set.end());
  ImageDataset real_data;
  const bool asd_real = cfg.method == "asd" && cfg.objective.asd_real;
  if (asd_real) {
    real_data = load_dataset(*cfg.data, "train");
    if (real_data.images.sizes().slice(1) != torch::IntArrayRef{topt.channels, topt.resolution, topt.resolution})
      throw ConfigError(fmt::format("data: images are {}x{}x{} but the teacher {} takes {}x{}x{}",
                                    real_data.images.size(1), real_data.images.size(2), real_data.images.size(3),
                                    cfg.teacher.string(), topt.channels, topt.resolution, topt.resolution));
    if (!real_data.labels.defined())
      throw ConfigError("generate2d.asd_real: the [data] images have no labels, so none is known to be of a prompt's class");
    for (int64_t k : classes)
      if ((real_data.labels == k).sum().item<int64_t>() == 0)
        throw ConfigError(fmt::format("generate2d.asd_real: the [data] set has no image of class {} (a prompt's "
                                      "class); Eq. 5 needs real images of every prompt",
                                      k));
  }
  auto device = start_run(out, cfg.runtime);
  torch::manual_seed(cfg.seed);
  Rng rng(cfg.seed);
  freeze(*teacher);
  teacher->eval();
  teacher->to(device);

  ImageParticles gen(labels, topt.channels, topt.resolution, cfg.init_std, rng);
  gen->to(device);
  auto objective = make_objective(cfg.method, cfg.objective, teacher->schedule);
  std::shared_ptr<Denoiser> fake;
  if (objective->needs().fake) {
    if (cfg.fake == "embedding")
      fake = ClassEmbeddingFake(teacher, classes).ptr();
    else if (cfg.fake == "lora")
      fake = lora_copy(*unet, cfg.lora).ptr();
    else
      fake = teacher->copy();
    fake->to(device);
  }
  RealSampler real;
  if (asd_real) real = class_sampler(real_data, labels, device);
  Models models{teacher.get(), fake.get(), nullptr};
  require_same_config(out / "checkpoint.pt", config_text);
  write_text_atomic(out / "config.resolved.toml", config_text);  // after the check: a refused run changes nothing

  DistillLoopOptions L = cfg.loop;
  L.progress = progress;
  L.label = fmt::format("{} ({} particles)", cfg.method, gen->count());
  DistillLoop loop(L, *gen, *objective, models, fake.get(), real, teacher->schedule, device);
  auto t0 = std::chrono::steady_clock::now();
  loop.run(out, rng, config_text);
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  Generate2dResult res;
  res.iterations = loop.step();
  const int64_t trained = loop.step() - loop.start_step();
  res.seconds_per_iteration = trained > 0 ? secs / trained : 0.0;
  res.train_seconds = loop.seconds();
  std::vector<std::string> curves = {"gen_loss"};
  if (fake) curves.push_back("critic_loss");  // SDS trains nothing but the particles
  plot_metrics_csv(out / "metrics.csv", out / "loss.png", curves,
                   fmt::format("{}{}: {}", cfg.method, asd_real ? " (Eq. 5)" : "", fmt::join(cfg.prompts, ", ")), false);
  res.images = gen->particles.detach().cpu().clamp(-1, 1);
  res.labels = gen->labels.cpu();
  save_safetensors(out / "particles.safetensors", {{"images", res.images}, {"labels", res.labels}},
                   {{"retort.prompts", nlohmann::json(cfg.prompts).dump()}, {"retort.method", cfg.method}});
  write_png_grid(out / "particles.png", res.images, grid_columns(cfg));
  return res;
}

}  // namespace retort
