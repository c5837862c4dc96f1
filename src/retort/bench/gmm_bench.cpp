#include "retort/bench/gmm_bench.h"
#include "retort/run/kept_result.h"

#include <fmt/format.h>

#include <fstream>

#include "retort/core/error.h"
#include "retort/core/runtime.h"
#include "retort/dist/world.h"
#include "retort/eval/metrics.h"
#include "retort/models/fake_score.h"
#include "retort/plot/scatter.h"
#include "retort/run/run_folder.h"

namespace fs = std::filesystem;

namespace retort {
namespace {

// Models of one run, owned together.
struct RunModels {
  std::shared_ptr<MixtureTeacher> teacher;
  DeltaFake fake{nullptr};
  MlpDiscriminator disc{nullptr};
  GeneratorPtr gen;
};

MlpOptions mlp_options(int64_t dim, int64_t hidden, int64_t blocks, int64_t classes) {
  MlpOptions o;
  o.dim = dim;
  o.hidden = hidden;
  o.blocks = blocks;
  o.num_classes = classes;
  return o;
}

RunModels build_models(const GaussianMixture& target, const Schedule& schedule, const RunSpec& r,
                       const ObjectiveNeeds& needs, Rng& rng, const torch::Device& device) {
  RunModels m;
  m.teacher = std::make_shared<MixtureTeacher>(target.to(device), schedule);
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
  if (r.generator == "particles") {
    m.gen = std::make_shared<ParticleGeneratorImpl>(r.particles, D, r.init_std, target.classes(),
                                                    target.class_weights(), rng);
  } else {
    OneStepOptions o;
    o.dim = D;
    o.latent_dim = r.latent_dim;
    o.hidden = r.gen_hidden;
    o.blocks = r.gen_blocks;
    o.num_classes = C;
    m.gen = std::make_shared<OneStepGeneratorImpl>(o, target.classes(), target.class_weights());
  }
  m.gen->to(device);
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

nlohmann::json run_gmm_single(const GmmBenchConfig& cfg, const RunSpec& r, const fs::path& run_dir, bool progress) {
  const auto device = rank_device(cfg.runtime);
  GaussianMixture target(cfg.components);
  Schedule schedule(cfg.schedule);
  Rng rng(cfg.seed);
  // Module initialisers draw from LibTorch's global generator: seed it so each run is
  // reproducible by itself, whatever ran before it in the process.
  torch::manual_seed(cfg.seed);
  auto objective = make_objective(r.method, r.objective, schedule);
  auto needs = objective->needs();
  auto models = build_models(target, schedule, r, needs, rng, device);
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
  nlohmann::json result = {{"method", r.method}, {"generator", r.generator}, {"name", r.name}};
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
  // Scoring uses its own seeds so every run is compared with the same reference samples.
  Rng eval_rng(cfg.seed + 1), ref_rng(cfg.seed + 2);
  auto x = models.gen->draw_eval(cfg.eval.samples, eval_rng).x0.detach().cpu();
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

std::string results_markdown(const nlohmann::json& results) {
  std::string md =
      "| method | generator | modes covered | mass TV | MMD | SW2 | energy | in 3σ | seconds |\n"
      "|---|---|---|---|---|---|---|---|---|\n";
  for (const auto& r : results) {
    if (r.value("status", "") != "ok") {
      md += fmt::format("| {} | {} | {} | | | | | | {:.1f} |\n", r["method"].get<std::string>(),
                        r["generator"].get<std::string>(), r.value("status", "?"), r.value("seconds", 0.0));
      continue;
    }
    md += fmt::format("| {} | {} | {}/{} | {:.3f} | {:.4f} | {:.3f} | {:.4f} | {:.3f} | {:.1f} |\n",
                      r["method"].get<std::string>(), r["generator"].get<std::string>(),
                      r["modes_covered"].get<int64_t>(), r["modes_total"].get<int64_t>(), r["mass_tv"].get<double>(),
                      r["mmd"].get<double>(), r["sw2"].get<double>(), r["energy"].get<double>(),
                      r["in_3sigma"].get<double>(), r["seconds"].get<double>());
  }
  return md;
}

nlohmann::json run_gmm_bench(const GmmBenchConfig& cfg, const fs::path& out, const GmmBenchOptions& opts) {
  start_run(out, cfg.runtime, /*data_parallel=*/true);
  // Data parallelism: the rows are independent runs, so they are split over the ranks (row i on
  // rank i mod N), each run by its rank alone into its own folder; rank 0 then reads them all and
  // writes the table. Across hosts, --out must be one shared folder.
  const World w = world();
  if (w.writes()) {
    std::fprintf(stderr, "%s\n", apply_runtime(cfg.runtime).c_str());
    write_resolved_config(out, cfg.resolved);
    // A stale results.json from an earlier invocation must not pass for this one's.
    fs::remove(out / "results.json");
  }
  barrier();  // the folder is clean before any rank's row can finish
  for (size_t i = 0; i < cfg.runs.size(); ++i) {
    if (int(i % size_t(w.size)) != w.rank) continue;
    const auto& r = cfg.runs[i];
    const auto run_dir = out / "runs" / r.name;
    create_output_folder(run_dir);
    const auto result_path = run_dir / "result.json";
    if (!kept_result(result_path, r.config_text).is_null()) {
      std::fprintf(stderr, "%s: finished earlier, kept\n", r.name.c_str());
      continue;
    }
    AloneOnThisRank alone;
    keep_result(result_path, run_gmm_single(cfg, r, run_dir, opts.progress && w.size == 1), r.config_text);
    if (w.distributed()) std::fprintf(stderr, "%s: done on rank %d\n", r.name.c_str(), w.rank);
  }
  barrier();
  nlohmann::json results = nlohmann::json::array();
  if (!w.writes()) return results;
  GaussianMixture target(cfg.components);
  std::vector<ScatterPanel> panels;
  for (size_t i = 0; i < cfg.runs.size(); ++i) {
    const auto& r = cfg.runs[i];
    const auto run_dir = out / "runs" / r.name;
    auto result = kept_result(run_dir / "result.json", r.config_text);
    if (result.is_null())
      throw IoError(fmt::format("{}: rank {} ran this row but its result is not here; across hosts bench-gmm needs "
                                "--out on a file system every host shares", (run_dir / "result.json").string(),
                                i % size_t(w.size)));
    ScatterPanel panel{r.name, run_subtitle(result), {}};
    if (fs::exists(run_dir / "samples.pt") && result.value("status", "") == "ok") {
      torch::load(panel.samples, (run_dir / "samples.pt").string());
      plot_samples((out / (r.name + ".png")).string(), target, panel);
    }
    panels.push_back(panel);
    results.push_back(result);
  }
  plot_overview((out / "overview.png").string(), target, panels, 4);
  write_text_atomic(out / "results.md", results_markdown(results));
  write_text_atomic(out / "results.json", results.dump(2));
  return results;
}

}  // namespace retort
