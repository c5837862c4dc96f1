#include "retort/bench/gmm_config.h"

#include <fmt/format.h>

#include <algorithm>
#include <set>

#include "retort/core/error.h"
#include "retort/core/runtime_config.h"
#include "retort/generators/generator.h"
#include "retort/io/fingerprint.h"
#include "retort/models/diffusion_model.h"
#include "retort/models/fake_score.h"

namespace retort {
namespace {

std::vector<MixtureComponent> read_target(ConfigNode t) {
  TargetSpec ring;
  gmm_target_option_table().read(t, ring);
  if (ring.preset == "ring") return ring_components(ring.modes, ring.dim, ring.radius, ring.std, ring.classes);
  auto modes = t.tables("mode");
  if (modes.empty()) t.fail("mode", "preset = \"modes\" needs at least one [[target.mode]]");
  std::vector<MixtureComponent> comps;
  for (auto& m : modes) {
    ModeSpec spec;
    gmm_mode_option_table().read(m, spec);
    MixtureComponent c;
    c.mean = spec.mean;
    const size_t D = c.mean.size();
    c.cov = spec.cov;
    if (c.cov.empty()) {
      c.cov.assign(D, std::vector<double>(D, 0.0));
      for (size_t i = 0; i < D; ++i) c.cov[i][i] = spec.std * spec.std;
    }
    c.weight = spec.weight;
    c.cls = spec.cls;
    comps.push_back(std::move(c));
  }
  return comps;
}

}  // namespace

const OptionTable<RunSpec>& gmm_run_option_table() {
  static const auto table = [] {
    OptionTable<RunSpec> t;
    t.choice("method", &RunSpec::method, objective_names(), "the objective")
        .choice("generator", &RunSpec::generator, generator_names(),
                "particles (N free samples) or network (one-step z -> x0)")
        .text("name", &RunSpec::name, "run name (letters, digits, -_.), unique; empty: METHOD-GENERATOR")
        .include(distill_loop_option_table(), &RunSpec::loop,
                 {"steps", "batch", "critic_steps", "share_noise", "lr", "critic_lr", "lr_half_life", "weight_decay",
                  "critic_weight_decay", "grad_clip", "critic_grad_clip", "t_min", "t_max", "anneal", "anneal_to",
                  "anneal_at", "ema", "log_every", "checkpoint_every", "max_nonfinite_skips"})
        .include(objective_option_table(), &RunSpec::objective)
        .choice("fake", &RunSpec::fake, fake_kind_names(),
                "fake score kind; the exact teacher supports delta (zero-initialised residual MLP around it)")
        .integer("fake_hidden", &RunSpec::fake_hidden, 1, 65536, "delta MLP width")
        .integer("fake_blocks", &RunSpec::fake_blocks, 0, 64, "delta MLP residual blocks")
        .integer("disc_hidden", &RunSpec::disc_hidden, 1, 65536, "discriminator MLP width")
        .integer("disc_blocks", &RunSpec::disc_blocks, 0, 64, "discriminator MLP residual blocks")
        .integer("particles", &RunSpec::particles, 1, 10'000'000, "particle count")
        .number("init_std", &RunSpec::init_std, 0, 1e6, "particles start from N(0, init_std²)")
        .integer("latent_dim", &RunSpec::latent_dim, 0, 65536,
                 "network generator: latent size; 0 = the data dimension")
        .integer("gen_hidden", &RunSpec::gen_hidden, 1, 65536, "network generator: width")
        .integer("gen_blocks", &RunSpec::gen_blocks, 0, 64, "network generator: residual blocks");
    return t;
  }();
  return table;
}

namespace {

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
  check_objective_options(n, r.method, r.objective);
}

}  // namespace

const OptionTable<TargetSpec>& gmm_target_option_table() {
  static const auto table = [] {
    using T = TargetSpec;
    auto ring = [](const T& t) { return t.preset == "ring"; };
    OptionTable<T> t;
    t.choice("preset", &T::preset, {"ring", "modes"}, "ring, or modes for explicit [[target.mode]] tables")
        .integer("modes", &T::modes, 1, 1000, "K, the modes on the circle")
        .when(ring, "ring")
        .integer("dim", &T::dim, 2, 4096, "D, the data dimension (the circle lies in the first two)")
        .when(ring, "ring")
        .number("radius", &T::radius, 0.0, 1e6, "the circle's radius")
        .when(ring, "ring")
        .number("std", &T::std, 1e-6, 1e6, "each mode's isotropic standard deviation")
        .when(ring, "ring")
        .flag("classes", &T::classes, "mode k has class k (a conditional target, CFG)")
        .when(ring, "ring");
    return t;
  }();
  return table;
}

const OptionTable<ModeSpec>& gmm_mode_option_table() {
  static const auto table = [] {
    using M = ModeSpec;
    OptionTable<M> t;
    typename OptionTable<M>::Row cov;
    cov.key = "cov";
    cov.help = "D x D covariance (instead of std)";
    cov.range = "D x D matrix";
    cov.read = [](ConfigNode& n, M& m) {
      if (n.has("cov")) m.cov = n.matrix("cov");
    };
    cov.show = [](const M& m) { return m.cov.empty() ? std::string("[]") : nlohmann::json(m.cov).dump(); };
    cov.save = [](const M& m, nlohmann::json& j) { j["cov"] = m.cov; };
    cov.load = [](const nlohmann::json& j, M& m) {
      if (j.contains("cov")) m.cov = j.at("cov").get<std::vector<std::vector<double>>>();
    };
    t.numbers("mean", &M::mean, -1e12, 1e12, "the mode's D coordinates (required)")
        .custom(cov)
        .number("std", &M::std, 1e-9, 1e9, "isotropic standard deviation (when there is no cov)")
        .number("weight", &M::weight, 1e-12, 1e12, "mixture weight (normalised over the modes)")
        .integer("class", &M::cls, kNullClass, 1 << 20, "the mode's class (-1: none)")
        .check([](ConfigNode& n, const M& m) {
          if (m.mean.empty()) n.fail("mean", "missing or empty");
          if (n.has("cov") && n.has("std")) n.fail("cov", "give either cov or std, not both");
          const size_t D = m.mean.size();
          if (n.has("cov")) {
            if (m.cov.size() != D) n.fail("cov", fmt::format("must be {}x{} to match mean", D, D));
            for (const auto& row : m.cov)
              if (row.size() != D) n.fail("cov", fmt::format("must be {}x{} to match mean", D, D));
          }
        });
    return t;
  }();
  return table;
}

const OptionTable<EvalSpec>& gmm_eval_option_table() {
  static const auto table = [] {
    using E = EvalSpec;
    OptionTable<E> t;
    t.integer("samples", &E::samples, 10, 1'000'000, "generated samples scored (network generators; particles: all)")
        .integer("reference", &E::reference, 10, 1'000'000, "exact target samples");
    return t;
  }();
  return table;
}

const OptionTable<GmmBenchConfig>& gmm_top_option_table() {
  static const auto table = [] {
    using C = GmmBenchConfig;
    OptionTable<C> t;
    t.integer("seed", &C::seed, 0, int64_t{1} << 62, "the first seed (repetition k uses seed + k * 1000003)")
        .integer("seeds", &C::seeds, 1, 1000, "every run repeated with this many independent seeds (--seeds)")
        .text("teacher", &C::teacher,
              "a TorchScript model of the target to distil instead of its exact score (contract dim = the "
              "target's; README, \"Distil your own PyTorch model\"); \"\": the exact teacher");
    return t;
  }();
  return table;
}

namespace {

// A TorchScript teacher must model points of the target's dimension with its classes; loaded once
// here (probe call included) so that a wrong one is refused before anything is written.
void check_gmm_teacher(const GmmBenchConfig& cfg, ConfigNode& root) {
  const GaussianMixture target(cfg.components);
  const auto model = load_diffusion_model(cfg.teacher, nullptr, cfg.teacher_contract ? &*cfg.teacher_contract : nullptr);
  const auto s = model->shape();
  const auto& classes = target.classes();
  const int64_t need_classes = classes.empty() ? 0 : *std::max_element(classes.begin(), classes.end()) + 1;
  if (s.dim != target.dim())
    root.fail("teacher", fmt::format("{} models {} (contract dim = {}); the target's points have {} dimensions",
                                     cfg.teacher.string(), s.dim > 0 ? "points" : "images", s.dim, target.dim()));
  if ((need_classes > 0) != (s.num_classes > 0) || s.num_classes < need_classes)
    root.fail("teacher", fmt::format("{} has {} classes; the target's components have {}", cfg.teacher.string(),
                                     s.num_classes, need_classes));
  const ScheduleOptions a = model->schedule.options(), b = cfg.schedule;
  if (a.kind != b.kind || a.steps != b.steps || a.continuous != b.continuous)
    root.fail("teacher", fmt::format("{}: its schedule differs from [schedule]; give the one it was trained on",
                                     cfg.teacher.string()));
}

}  // namespace

GmmBenchConfig parse_gmm_bench_config(ConfigNode root) {
  GmmBenchConfig cfg;
  gmm_top_option_table().read(root, cfg);
  cfg.runtime = read_runtime_options(root.table("runtime"));
  if (root.has("torchscript")) {
    auto n = root.table("torchscript");
    cfg.teacher_contract = read_script_contract(n);
  }

  auto target = root.table("target");
  cfg.components = read_target(target);
  try {
    GaussianMixture check(cfg.components);  // positive definiteness etc.
  } catch (const ConfigError& e) {
    throw ConfigError(fmt::format("{}: {}", root.source(), e.what()));
  }
  bool conditional = cfg.components.front().cls != kNullClass;

  auto sch = root.table("schedule");
  schedule_option_table().read(sch, cfg.schedule);
  if (!cfg.teacher.empty()) check_gmm_teacher(cfg, root);

  auto ev = root.table("eval");
  gmm_eval_option_table().read(ev, cfg.eval);

  auto ratio = root.table("ratio");
  ratio_check_option_table().read(ratio, cfg.ratio);

  auto defaults_node = root.table("defaults");
  RunSpec defaults;
  gmm_run_option_table().read(defaults_node, defaults);
  auto runs = root.tables("run");
  if (runs.empty()) root.fail("run", "no [[run]] given: nothing to benchmark");
  std::set<std::string> names;
  std::string context = sch.resolved_here() + target.resolved_here() + fmt::format("seed={}\n", cfg.seed);
  if (!cfg.teacher.empty()) context += "teacher " + file_fingerprint(cfg.teacher) + "\n";
  for (auto& n : runs) {
    RunSpec r = defaults;
    gmm_run_option_table().read(n, r);
    if (r.name.empty()) r.name = r.method + "-" + r.generator;
    for (char c : r.name)
      if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.'))
        n.fail("name", fmt::format("'{}': use letters, digits, '-', '_' and '.' only", r.name));
    if (r.name.find(".seed-") != std::string::npos)
      n.fail("name", fmt::format("'{}': '.seed-' is kept for the folders of repeated seeds", r.name));
    if (!names.insert(r.name).second)
      n.fail("name", fmt::format("'{}' is used by two runs; give each a distinct name", r.name));
    validate_run(n, r, conditional);
    cfg.runs.push_back(std::move(r));
  }
  root.finish();
  // Resume identity of each run: its resolved keys and everything it depends on.
  for (size_t i = 0; i < runs.size(); ++i) cfg.runs[i].config_text = runs[i].resolved_here() + context;
  cfg.ratio_identity = ratio.resolved_here() + context;
  cfg.resolved = root.resolved_toml();
  return cfg;
}

uint64_t run_seed(const GmmBenchConfig& cfg, int64_t k) { return cfg.seed + uint64_t(k) * 1'000'003; }

GmmBenchConfig load_gmm_bench_config(const std::filesystem::path& path) {
  return parse_gmm_bench_config(ConfigNode::from_file(path));
}

}  // namespace retort
