#include "retort/bench/gmm_config.h"

#include <fmt/format.h>

#include <set>

#include "retort/core/error.h"
#include "retort/core/runtime_config.h"
#include "retort/generators/generator.h"
#include "retort/models/fake_score.h"

namespace retort {
namespace {

std::vector<MixtureComponent> read_target(ConfigNode t) {
  auto preset = t.choice("preset", "ring", {"ring", "modes"});
  if (preset == "ring") {
    int64_t modes = t.integer("modes", 8, 1, 1000);
    int64_t dim = t.integer("dim", 2, 2, 4096);
    double radius = t.number("radius", 2.0, 0.0, 1e6);
    double std = t.number("std", 0.1, 1e-6, 1e6);
    bool classes = t.boolean("classes", false);
    return ring_components(modes, dim, radius, std, classes);
  }
  auto modes = t.tables("mode");
  if (modes.empty()) t.fail("mode", "preset = \"modes\" needs at least one [[target.mode]]");
  std::vector<MixtureComponent> comps;
  for (auto& m : modes) {
    MixtureComponent c;
    c.mean = m.numbers("mean", {});
    if (c.mean.empty()) m.fail("mean", "missing or empty");
    const size_t D = c.mean.size();
    if (m.has("cov") && m.has("std")) m.fail("cov", "give either cov or std, not both");
    if (m.has("cov")) {
      c.cov = m.matrix("cov");
      if (c.cov.size() != D) m.fail("cov", fmt::format("must be {}x{} to match mean", D, D));
      for (const auto& row : c.cov)
        if (row.size() != D) m.fail("cov", fmt::format("must be {}x{} to match mean", D, D));
    } else {
      double s = m.number("std", 0.1, 1e-9, 1e9);
      c.cov.assign(D, std::vector<double>(D, 0.0));
      for (size_t i = 0; i < D; ++i) c.cov[i][i] = s * s;
    }
    c.weight = m.number("weight", 1.0, 1e-12, 1e12);
    c.cls = m.integer("class", kNullClass, kNullClass, 1 << 20);
    comps.push_back(std::move(c));
  }
  return comps;
}

// Reads every run key from `n`, defaulting to `base`.
RunSpec read_run(ConfigNode& n, const RunSpec& base) {
  RunSpec r = base;
  r.method = n.choice("method", base.method, objective_names());
  r.generator = n.choice("generator", base.generator, generator_names());
  r.name = n.string("name", "");
  auto& L = r.loop;
  L.steps = n.integer("steps", base.loop.steps, 1, 10'000'000);
  L.batch = n.integer("batch", base.loop.batch, 1, 1'000'000);
  L.critic_steps = n.integer("critic_steps", base.loop.critic_steps, 1, 1000);
  L.share_noise = n.boolean("share_noise", base.loop.share_noise);
  L.gen_optim.lr = n.number("lr", base.loop.gen_optim.lr, 1e-9, 10);
  L.critic_optim.lr = n.number("critic_lr", base.loop.critic_optim.lr, 1e-9, 10);
  L.gen_optim.grad_clip = L.critic_optim.grad_clip = n.number("grad_clip", base.loop.gen_optim.grad_clip, 0, 1e9);
  L.critic_optim.weight_decay = n.number("critic_weight_decay", base.loop.critic_optim.weight_decay, 0, 1);
  L.time.min = n.number("t_min", base.loop.time.min, 0, 1);
  L.time.max = n.number("t_max", base.loop.time.max, 0, 1);
  if (L.time.min > L.time.max) n.fail("t_min", fmt::format("{} is above t_max = {}", L.time.min, L.time.max));
  L.time.anneal = parse_anneal(n.choice("anneal", base.loop.time.anneal == Anneal::None ? "none"
                                                  : base.loop.time.anneal == Anneal::Step ? "step" : "linear",
                                        {"none", "step", "linear"}));
  L.time.anneal_to = n.number("anneal_to", base.loop.time.anneal_to, 0, 1);
  L.time.anneal_at = n.number("anneal_at", base.loop.time.anneal_at, 0, 1);
  L.log_every = n.integer("log_every", base.loop.log_every, 1, 1'000'000);
  L.checkpoint_every = n.integer("checkpoint_every", base.loop.checkpoint_every, 0, 10'000'000);
  auto& O = r.objective;
  O.cfg_scale = n.number("cfg_scale", base.objective.cfg_scale, 0, 1000);
  auto wnames = weighting_names();
  O.weighting = parse_weighting(n.choice("weighting", wnames[int(base.objective.weighting)], wnames));
  O.gamma = n.number("gamma", base.objective.gamma, -10, 10);
  O.eta = n.number("eta", base.objective.eta, 0, 10);
  O.asd_real = n.boolean("asd_real", base.objective.asd_real);
  O.dmd_normalize = n.boolean("dmd_normalize", base.objective.dmd_normalize);
  O.logit_clamp = n.number("logit_clamp", base.objective.logit_clamp, 0, 100);
  O.normalize_h = n.boolean("normalize_h", base.objective.normalize_h);
  O.gan_weight = n.number("gan_weight", base.objective.gan_weight, 0, 1e6);
  O.disc_weight = n.number("disc_weight", base.objective.disc_weight, 0, 1e6);
  r.fake = n.choice("fake", base.fake, fake_kind_names());
  r.fake_hidden = n.integer("fake_hidden", base.fake_hidden, 1, 65536);
  r.fake_blocks = n.integer("fake_blocks", base.fake_blocks, 0, 64);
  r.disc_hidden = n.integer("disc_hidden", base.disc_hidden, 1, 65536);
  r.disc_blocks = n.integer("disc_blocks", base.disc_blocks, 0, 64);
  r.particles = n.integer("particles", base.particles, 1, 10'000'000);
  r.init_std = n.number("init_std", base.init_std, 0, 1e6);
  r.latent_dim = n.integer("latent_dim", base.latent_dim, 1, 65536);
  r.gen_hidden = n.integer("gen_hidden", base.gen_hidden, 1, 65536);
  r.gen_blocks = n.integer("gen_blocks", base.gen_blocks, 0, 64);
  return r;
}

void validate_run(ConfigNode& n, const RunSpec& r, bool conditional) {
  if (!conditional && r.objective.cfg_scale != 1.0)
    n.fail("cfg_scale", fmt::format("{} needs a conditional target (modes with a class); the target has none",
                                    r.objective.cfg_scale));
  if (r.fake != "delta")
    n.fail("fake", fmt::format("'{}' needs a network teacher; the exact mixture teacher supports \"delta\"", r.fake));
  if (r.method == "asd" && r.objective.gamma <= -1.0)
    n.fail("gamma", fmt::format("{} <= -1: with a flexible fake score (delta) the ASD discriminator loss "
                                "(1+gamma)|delta|^2 + ... is unbounded below; use gamma in (-1, 0]",
                                r.objective.gamma));
  if (r.method == "dmd2" && r.objective.gan_weight <= 0)
    n.fail("gan_weight", "dmd2 is DMD plus a GAN term: set gan_weight > 0");
}

}  // namespace

GmmBenchConfig parse_gmm_bench_config(ConfigNode root) {
  GmmBenchConfig cfg;
  cfg.seed = static_cast<uint64_t>(root.integer("seed", 0, 0, int64_t{1} << 62));
  cfg.runtime = read_runtime_options(root.table("runtime"));

  auto target = root.table("target");
  cfg.components = read_target(target);
  try {
    GaussianMixture check(cfg.components);  // positive definiteness etc.
  } catch (const ConfigError& e) {
    throw ConfigError(fmt::format("{}: {}", root.source(), e.what()));
  }
  bool conditional = cfg.components.front().cls != kNullClass;

  auto sch = root.table("schedule");
  cfg.schedule.kind = parse_schedule_kind(sch.choice("kind", "linear", schedule_kind_names()));
  cfg.schedule.steps = sch.integer("steps", 1000, 2, 100000);
  cfg.schedule.continuous = sch.boolean("continuous", false);

  auto ev = root.table("eval");
  cfg.eval.samples = ev.integer("samples", 2000, 10, 1'000'000);
  cfg.eval.reference = ev.integer("reference", 5000, 10, 1'000'000);

  auto defaults_node = root.table("defaults");
  RunSpec defaults = read_run(defaults_node, RunSpec{});
  auto runs = root.tables("run");
  if (runs.empty()) root.fail("run", "no [[run]] given: nothing to benchmark");
  std::set<std::string> names;
  std::string context = sch.resolved_here() + target.resolved_here() + fmt::format("seed={}\n", cfg.seed);
  for (auto& n : runs) {
    RunSpec r = read_run(n, defaults);
    if (r.name.empty()) r.name = r.method + "-" + r.generator;
    for (char c : r.name)
      if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.'))
        n.fail("name", fmt::format("'{}': use letters, digits, '-', '_' and '.' only", r.name));
    if (!names.insert(r.name).second)
      n.fail("name", fmt::format("'{}' is used by two runs; give each a distinct name", r.name));
    validate_run(n, r, conditional);
    cfg.runs.push_back(std::move(r));
  }
  root.finish();
  // Resume identity of each run: its resolved keys and everything it depends on.
  for (size_t i = 0; i < runs.size(); ++i) cfg.runs[i].config_text = runs[i].resolved_here() + context;
  cfg.resolved = root.resolved_toml();
  return cfg;
}

GmmBenchConfig load_gmm_bench_config(const std::filesystem::path& path) {
  return parse_gmm_bench_config(ConfigNode::from_file(path));
}

}  // namespace retort
