// retort: the command-line front end. Each subcommand parses its flags, reads its config, and calls
// the library; every error is caught here and reported as one line with a non-zero exit.
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <cstdio>
#include <iostream>

#include "retort/bench/gmm_bench.h"
#include "retort/bench/step_bench.h"
#include "retort/core/error.h"

namespace {

int report(const char* kind, const std::string& what, int code) {
  std::fprintf(stderr, "retort: %s%s\n", kind, what.c_str());
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"retort: score-distillation toolkit (SDS, VSD, ASD, DMD, DMD2, softened RKL, f-divergences)"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "retort 0.1");

  std::string config, out;
  bool no_progress = false;
  auto* gmm = app.add_subcommand("bench-gmm", "Run every method x generator of a config against the exact "
                                              "Gaussian-mixture teacher; write results.json/.md and PNGs");
  gmm->add_option("--config", config, "TOML config (see configs/gmm-ring8.toml)")->required();
  gmm->add_option("--out", out, "output folder")->required();
  gmm->add_flag("--no-progress", no_progress, "no progress bar");

  retort::StepBenchOptions step_opts;
  auto* step = app.add_subcommand("bench-step", "Time one training step of the MLP denoiser (compare with "
                                                "bench/python/mlp_step.py)");
  step->add_option("--batch", step_opts.batch, "batch size")->check(CLI::Range(1, 1 << 20));
  step->add_option("--dim", step_opts.dim, "data dimension")->check(CLI::Range(1, 1 << 16));
  step->add_option("--hidden", step_opts.hidden, "hidden width")->check(CLI::Range(1, 1 << 16));
  step->add_option("--blocks", step_opts.blocks, "residual blocks")->check(CLI::Range(0, 256));
  step->add_option("--steps", step_opts.steps, "timed steps")->check(CLI::Range(1, 1 << 24));
  step->add_option("--warmup", step_opts.warmup, "untimed steps first")->check(CLI::Range(0, 1 << 24));
  step->add_option("--threads", step_opts.runtime.torch_threads, "LibTorch threads (0 = all cores)");
  step->add_option("--blas-threads", step_opts.runtime.blas_threads, "BLAS threads");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    if (*gmm) {
      auto cfg = retort::load_gmm_bench_config(config);
      auto results = retort::run_gmm_bench(cfg, out, {!no_progress});
      std::cout << retort::results_markdown(results);
      std::fprintf(stderr, "wrote %s/results.json, results.md, overview.png\n", out.c_str());
    } else if (*step) {
      std::cout << retort::run_step_bench(step_opts) << std::endl;
    }
  } catch (const retort::ConfigError& e) {
    return report("config error: ", e.what(), 2);
  } catch (const retort::IoError& e) {
    return report("I/O error: ", e.what(), 3);
  } catch (const retort::Error& e) {
    return report("error: ", e.what(), 1);
  } catch (const c10::Error& e) {
    return report("torch error: ", e.what_without_backtrace(), 1);
  } catch (const std::exception& e) {
    return report("error: ", e.what(), 1);
  }
  return 0;
}
