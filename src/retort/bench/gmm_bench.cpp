#include "retort/bench/gmm_bench.h"
#include "retort/bench/gmm_ratio.h"
#include "retort/run/kept_result.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <fstream>

#include "retort/core/error.h"
#include "retort/core/runtime.h"
#include "retort/dist/world.h"
#include "retort/eval/metrics.h"
#include "retort/models/diffusion_model.h"
#include "retort/models/fake_score.h"
#include "retort/models/unet.h"  // copy_weights
#include "retort/plot/scatter.h"
#include "retort/run/run_folder.h"

namespace fs = std::filesystem;

namespace retort {
namespace {

// Models of one run, owned together.
struct RunModels {
  DenoiserPtr teacher;
  DeltaFake fake{nullptr};
  MlpDiscriminator disc{nullptr};
  GeneratorPtr gen;
  GeneratorPtr gen_ema;  // with [[run]] ema > 0: the moving average of gen, the one scored
};

MlpOptions mlp_options(int64_t dim, int64_t hidden, int64_t blocks, int64_t classes) {
  MlpOptions o;
  o.dim = dim;
  o.hidden = hidden;
  o.blocks = blocks;
  o.num_classes = classes;
  return o;
}

// The exact mixture's score, or the config's TorchScript model of it (frozen).
DenoiserPtr make_teacher(const GmmBenchConfig& cfg, const GaussianMixture& target, const Schedule& schedule,
                         const torch::Device& device) {
  if (cfg.teacher.empty()) return std::make_shared<MixtureTeacher>(target.to(device), schedule);
  auto m = load_diffusion_model(cfg.teacher, nullptr, cfg.teacher_contract ? &*cfg.teacher_contract : nullptr);
  freeze(*m);
  m->eval();
  m->to(device);
  return m;
}

GeneratorPtr build_generator(const GaussianMixture& target, const RunSpec& r, int64_t classes, Rng& rng,
                             const torch::Device& device) {
  GeneratorPtr g;
  if (r.generator == "particles") {
    g = std::make_shared<ParticleGeneratorImpl>(r.particles, target.dim(), r.init_std, target.classes(),
                                                target.class_weights(), rng);
  } else {
    OneStepOptions o;
    o.dim = target.dim();
    o.latent_dim = r.latent_dim > 0 ? r.latent_dim : target.dim();
    o.hidden = r.gen_hidden;
    o.blocks = r.gen_blocks;
    o.num_classes = classes;
    g = std::make_shared<OneStepGeneratorImpl>(o, target.classes(), target.class_weights());
  }
  g->to(device);
  return g;
}

RunModels build_models(DenoiserPtr teacher, const GaussianMixture& target, const Schedule& schedule, const RunSpec& r,
                       const ObjectiveNeeds& needs, Rng& rng, const torch::Device& device) {
  RunModels m;
  m.teacher = std::move(teacher);
  const int64_t D = target.dim();
  const int64_t C = target.classes().empty() ? 0 : *std::max_element(target.classes().begin(), target.classes().end()) + 1;
  if (needs.fake) {
    m.fake = DeltaFake(m.teacher, mlp_options(D, r.fake_hidden, r.fake_blocks, C), schedule);
    m.fake->to(device);
  }
  if (needs.disc) {
    m.disc = MlpDiscriminator(mlp_options(D, r.disc_hidden, r.disc_blocks, C));
    m.disc->to(device);
  }
  m.gen = build_generator(target, r, C, rng, device);
  // [[run]] ema: the moving average of the generator, the one scored. Built last: constructing a
  // network draws from the seeded generator, and the average must not change the others' init.
  if (r.loop.ema > 0) {
    Rng unused(0);  // a particle copy's own draws are overwritten by copy_weights
    m.gen_ema = build_generator(target, r, C, unused, device);
    copy_weights(*m.gen, *m.gen_ema);
    freeze(*m.gen_ema);
  }
  return m;
}

nlohmann::json metrics_json(const SampleMetrics& s) {
  return {{"modes_covered", s.modes_covered}, {"modes_total", s.modes_total}, {"mass_tv", s.mass_tv},
          {"mmd", s.mmd}, {"sw2", s.sw2}, {"energy", s.energy}, {"in_3sigma", s.in_3sigma},
          {"mode_mass", s.mode_mass}};
}

std::string run_subtitle(const nlohmann::json& r) {
  if (r.value("status", "") != "ok") return r.value("status", "?") + ": " + r.value("error", "");
  return fmt::format("modes {}/{}  TV {:.2f}  MMD {:.3f}  SW2 {:.3f}  3sig {:.2f}", r["modes_covered"].get<int64_t>(),
                     r["modes_total"].get<int64_t>(), r["mass_tv"].get<double>(), r["mmd"].get<double>(),
                     r["sw2"].get<double>(), r["in_3sigma"].get<double>());
}

}  // namespace

nlohmann::json run_gmm_single(const GmmBenchConfig& cfg, const RunSpec& r, uint64_t seed, const fs::path& run_dir,
                              bool progress) {
  const auto device = rank_device(cfg.runtime);
  GaussianMixture target(cfg.components);
  Schedule schedule(cfg.schedule);
  Rng rng(seed);
  // Module initialisers draw from LibTorch's global generator: seed it so each run is
  // reproducible by itself, whatever ran before it in the process.
  torch::manual_seed(seed);
  auto objective = make_objective(r.method, r.objective, schedule);
  auto needs = objective->needs();
  auto models = build_models(make_teacher(cfg, target, schedule, device), target, schedule, r, needs, rng, device);
  auto target_dev = target.to(device);
  RealSampler real = [&target_dev, device](int64_t n, Rng& g) {
    auto labels = draw_labels(target_dev.classes(), target_dev.class_weights(), n, g, device);
    return GenBatch{target_dev.sample(n, g, labels), Cond::classes(labels)};
  };
  Models mm{models.teacher.get(), models.fake ? models.fake.get() : nullptr,
            models.disc ? models.disc.get() : nullptr};
  DistillLoopOptions lo = r.loop;
  lo.progress = progress;
  lo.label = r.name;
  DistillLoop loop(lo, *models.gen, *objective, mm, models.fake ? models.fake.get() : nullptr, real, schedule,
                   device);
  if (models.gen_ema) loop.track_ema(*models.gen_ema);
  nlohmann::json result = {{"method", r.method}, {"generator", r.generator}, {"name", r.name}, {"seed", seed}};
  // loop.seconds(): since step 0, a resumed run's earlier invocations included.
  try {
    loop.run(run_dir, rng, r.config_text);
  } catch (const NonFiniteError& e) {
    // Divergence is an outcome of the method, reported as such rather than as a crash.
    result["status"] = "diverged";
    result["error"] = e.what();
    result["seconds"] = loop.seconds();
    return result;
  }
  result["seconds"] = loop.seconds();
  // Scoring uses its own seeds so every run of one seed is compared with the same reference samples.
  Rng eval_rng(seed + 1), ref_rng(seed + 2);
  const auto& scored = models.gen_ema ? models.gen_ema : models.gen;
  auto x = scored->draw_eval(cfg.eval.samples, eval_rng).x0.detach().cpu();
  auto reference = target.sample(cfg.eval.reference, ref_rng);
  if (!torch::isfinite(x).all().item<bool>()) {
    result["status"] = "diverged";
    result["error"] = "non-finite samples";
    return result;
  }
  auto metrics = evaluate_samples(target, x, reference, eval_rng);
  result.update(metrics_json(metrics));
  result["status"] = "ok";
  torch::save(x, (run_dir / "samples.pt").string());
  return result;
}

namespace {

// The measured columns of a row, in table order.
const std::vector<std::string> kMetricKeys = {"modes_covered", "mass_tv", "mmd", "sw2", "energy", "in_3sigma"};

double mean_of(const std::vector<double>& v) {
  double m = 0;
  for (double x : v) m += x;
  return v.empty() ? 0.0 : m / double(v.size());
}

// Sample standard deviation (n - 1); 0 for fewer than two values.
double std_of(const std::vector<double>& v) {
  if (v.size() < 2) return 0.0;
  const double m = mean_of(v);
  double ss = 0;
  for (double x : v) ss += (x - m) * (x - m);
  return std::sqrt(ss / double(v.size() - 1));
}

// One row of the table from the run's seeds: each metric's mean (and `KEY_std`) over the seeds
// that finished, `seeds` the per-seed results. One seed: that seed's result as it is.
nlohmann::json aggregate_seeds(const std::vector<nlohmann::json>& per_seed) {
  if (per_seed.size() == 1) return per_seed.front();
  const auto& first = per_seed.front();
  nlohmann::json row = {{"method", first["method"]}, {"generator", first["generator"]}, {"name", first["name"]},
                        {"seeds", per_seed}};
  std::vector<const nlohmann::json*> ok;
  std::vector<double> seconds;
  for (const auto& r : per_seed) {
    seconds.push_back(r.value("seconds", 0.0));
    if (r.value("status", "") == "ok") ok.push_back(&r);
  }
  row["seconds"] = mean_of(seconds);
  row["seconds_std"] = std_of(seconds);
  row["seeds_ok"] = ok.size();
  if (ok.empty()) {
    row["status"] = first.value("status", "diverged");
    row["error"] = first.value("error", "");
    return row;
  }
  row["status"] = "ok";
  row["modes_total"] = (*ok.front())["modes_total"];
  if (ok.front()->contains("true_weights")) row["true_weights"] = (*ok.front())["true_weights"];
  for (const auto& key : kMetricKeys) {
    std::vector<double> v;
    for (const auto* r : ok) v.push_back((*r)[key].get<double>());
    row[key] = mean_of(v);
    row[key + "_std"] = std_of(v);
  }
  const size_t K = (*ok.front())["mode_mass"].size();
  std::vector<double> mass(K), mass_std(K);
  for (size_t k = 0; k < K; ++k) {
    std::vector<double> v;
    for (const auto* r : ok) v.push_back((*r)["mode_mass"][k].get<double>());
    mass[k] = mean_of(v);
    mass_std[k] = std_of(v);
  }
  row["mode_mass"] = mass;
  row["mode_mass_std"] = mass_std;
  return row;
}

// "0.097" or, over several seeds, "0.097 ± 0.004".
std::string cell(const nlohmann::json& r, const std::string& key, int digits) {
  std::string text = fmt::format("{:.{}f}", r[key].get<double>(), digits);
  if (r.contains(key + "_std")) text += fmt::format(" ± {:.{}f}", r[key + "_std"].get<double>(), digits);
  return text;
}

// The light modes of a target: weight below half the heaviest's (none for equal weights).
std::vector<size_t> light_modes(const nlohmann::json& results) {
  for (const auto& r : results) {
    if (!r.contains("true_weights")) continue;
    const auto w = r["true_weights"].get<std::vector<double>>();
    const double top = *std::max_element(w.begin(), w.end());
    std::vector<size_t> light;
    for (size_t k = 0; k < w.size(); ++k)
      if (w[k] < 0.5 * top) light.push_back(k);
    return light;
  }
  return {};
}

}  // namespace

std::string results_markdown(const nlohmann::json& results) {
  const auto light = light_modes(results);
  std::vector<double> weights;
  for (const auto& r : results)
    if (r.contains("true_weights")) {
      weights = r["true_weights"].get<std::vector<double>>();
      break;
    }
  bool seeded = false;
  for (const auto& r : results) seeded = seeded || r.contains("seeds");
  std::string md = "| method | generator |";
  std::string rule = "|---|---|";
  if (seeded) {
    md += " seeds |";
    rule += "---|";
  }
  md += " modes covered | mass TV | MMD | SW2 | energy | in 3σ |";
  rule += "---|---|---|---|---|---|";
  for (size_t k : light) {
    md += fmt::format(" mode {} mass (true {:.3f}) |", k, weights[k]);
    rule += "---|";
  }
  md += " seconds |\n" + rule + "---|\n";
  for (const auto& r : results) {
    md += fmt::format("| {} | {} |", r["method"].get<std::string>(), r["generator"].get<std::string>());
    if (seeded)
      md += r.contains("seeds") ? fmt::format(" {}/{} |", r.value("seeds_ok", 0), r["seeds"].size())
                                : std::string(" 1 |");
    if (r.value("status", "") != "ok") {
      md += fmt::format(" {} | | | | | |", r.value("status", "?"));
      for (size_t i = 0; i < light.size(); ++i) md += " |";
      md += fmt::format(" {:.1f} |\n", r.value("seconds", 0.0));
      continue;
    }
    const bool several = r.contains("seeds");
    md += several ? fmt::format(" {} /{} |", cell(r, "modes_covered", 1), r["modes_total"].get<int64_t>())
                  : fmt::format(" {}/{} |", r["modes_covered"].get<int64_t>(), r["modes_total"].get<int64_t>());
    md += fmt::format(" {} | {} | {} | {} | {} |", cell(r, "mass_tv", 3), cell(r, "mmd", 4), cell(r, "sw2", 3),
                      cell(r, "energy", 4), cell(r, "in_3sigma", 3));
    for (size_t k : light) {
      md += fmt::format(" {:.3f}", r["mode_mass"][k].get<double>());
      if (r.contains("mode_mass_std")) md += fmt::format(" ± {:.3f}", r["mode_mass_std"][k].get<double>());
      md += " |";
    }
    md += fmt::format(" {} |\n", cell(r, "seconds", 1));
  }
  return md;
}

// The floor of every column: exact samples (seed 0's evaluation size) scored against seed 0's
// reference samples, as a run's samples are.
nlohmann::json exact_samples_result(const GmmBenchConfig& cfg, const GaussianMixture& target) {
  const uint64_t seed = run_seed(cfg, 0);
  Rng sample_rng(seed + 3), eval_rng(seed + 1), ref_rng(seed + 2);
  auto x = target.sample(cfg.eval.samples, sample_rng);
  auto reference = target.sample(cfg.eval.reference, ref_rng);
  return metrics_json(evaluate_samples(target, x, reference, eval_rng));
}

// [ratio]: the discriminator's density ratio against the exact one, into DIR/ratio.md and
// ratio.json (kept, like a run, while the config is the same).
void run_ratio_check(const GmmBenchConfig& cfg, const fs::path& out) {
  const auto kept_path = out / "runs" / "ratio-check.json";
  auto kept = kept_result(kept_path, cfg.ratio_identity);
  if (kept.is_null()) {
    AloneOnThisRank alone;
    std::vector<RatioAtTime> untrained;
    auto rows = check_density_ratio(GaussianMixture(cfg.components), Schedule(cfg.schedule), cfg.ratio, cfg.seed,
                                    rank_device(cfg.runtime), &untrained);
    kept = {{"markdown", ratio_markdown(rows, untrained)},
            {"result", {{"trained", ratio_json(rows)}, {"untrained", ratio_json(untrained)}}}};
    keep_result(kept_path, kept, cfg.ratio_identity);
  }
  write_text_atomic(out / "ratio.md", kept["markdown"].get<std::string>());
  write_text_atomic(out / "ratio.json", kept["result"].dump(2));
}

// The folder of repetition k of a run: runs/NAME, then runs/NAME.seed-K.
fs::path seed_folder(const fs::path& out, const RunSpec& r, int64_t k) {
  return out / "runs" / (k == 0 ? r.name : fmt::format("{}.seed-{}", r.name, k));
}

// What identifies repetition k of a run (a kept result is reused only when it matches): the run's
// config for k = 0, as before seeds existed, and the repetition index after it.
std::string seed_identity(const RunSpec& r, int64_t k) {
  return k == 0 ? r.config_text : r.config_text + fmt::format("seed_index={}\n", k);
}

nlohmann::json run_gmm_bench(const GmmBenchConfig& cfg, const fs::path& out, const GmmBenchOptions& opts) {
  start_run(out, cfg.runtime, /*data_parallel=*/true);
  // Data parallelism: the rows (each run at each seed) are independent, so they are split over the
  // ranks (row j on rank j mod N), each run by its rank alone into its own folder; rank 0 then reads
  // them all and writes the table. Across hosts, --out must be one shared folder.
  const World w = world();
  if (w.writes()) {
    std::fprintf(stderr, "%s\n", apply_runtime(cfg.runtime).c_str());
    write_resolved_config(out, cfg.resolved);
    // A stale results.json from an earlier invocation must not pass for this one's.
    fs::remove(out / "results.json");
  }
  barrier();  // the folder is clean before any rank's row can finish
  GaussianMixture target(cfg.components);
  const auto weights = target.weights().to(torch::kFloat64).contiguous();
  const std::vector<double> true_weights(weights.data_ptr<double>(), weights.data_ptr<double>() + weights.numel());
  const int64_t rows = int64_t(cfg.runs.size()) * cfg.seeds;
  for (int64_t j = 0; j < rows; ++j) {
    if (int(j % w.size) != w.rank) continue;
    const auto& r = cfg.runs[size_t(j / cfg.seeds)];
    const int64_t k = j % cfg.seeds;
    const auto run_dir = seed_folder(out, r, k);
    const auto label = run_dir.filename().string();
    create_output_folder(run_dir);
    const auto result_path = run_dir / "result.json";
    if (!kept_result(result_path, seed_identity(r, k)).is_null()) {
      std::fprintf(stderr, "%s: finished earlier, kept\n", label.c_str());
      continue;
    }
    AloneOnThisRank alone;
    auto result = run_gmm_single(cfg, r, run_seed(cfg, k), run_dir, opts.progress && w.size == 1);
    result["true_weights"] = true_weights;
    keep_result(result_path, result, seed_identity(r, k));
    if (w.distributed()) std::fprintf(stderr, "%s: done on rank %d\n", label.c_str(), w.rank);
  }
  barrier();
  nlohmann::json results = nlohmann::json::array();
  if (!w.writes()) return results;
  std::vector<ScatterPanel> panels;
  for (size_t i = 0; i < cfg.runs.size(); ++i) {
    const auto& r = cfg.runs[i];
    std::vector<nlohmann::json> per_seed;
    for (int64_t k = 0; k < cfg.seeds; ++k) {
      const auto run_dir = seed_folder(out, r, k);
      auto result = kept_result(run_dir / "result.json", seed_identity(r, k));
      if (result.is_null())
        throw IoError(fmt::format("{}: rank {} ran this row but its result is not here; across hosts bench-gmm needs "
                                  "--out on a file system every host shares",
                                  (run_dir / "result.json").string(), (int64_t(i) * cfg.seeds + k) % w.size));
      per_seed.push_back(result);
    }
    // The pictures show seed 0.
    const auto run_dir = seed_folder(out, r, 0);
    ScatterPanel panel{r.name, run_subtitle(per_seed.front()), {}};
    if (fs::exists(run_dir / "samples.pt") && per_seed.front().value("status", "") == "ok") {
      torch::load(panel.samples, (run_dir / "samples.pt").string());
      plot_samples((out / (r.name + ".png")).string(), target, panel);
    }
    panels.push_back(panel);
    results.push_back(aggregate_seeds(per_seed));
  }
  plot_overview((out / "overview.png").string(), target, panels, 4);
  if (cfg.ratio.steps > 0) run_ratio_check(cfg, out);
  const auto exact = exact_samples_result(cfg, target);
  write_text_atomic(out / "exact.json", exact.dump(2));
  write_text_atomic(out / "results.md",
                    results_markdown(results) +
                        fmt::format("\nExact samples (n = {}) scored the same way, the floor of each column: modes {}/{}, "
                                    "mass TV {:.3f}, MMD {:.4f}, SW2 {:.3f}, energy {:.4f}, in 3σ {:.3f}.\n",
                                    cfg.eval.samples, exact["modes_covered"].get<int64_t>(),
                                    exact["modes_total"].get<int64_t>(), exact["mass_tv"].get<double>(),
                                    exact["mmd"].get<double>(), exact["sw2"].get<double>(),
                                    exact["energy"].get<double>(), exact["in_3sigma"].get<double>()));
  write_text_atomic(out / "results.json", results.dump(2));
  return results;
}

}  // namespace retort
